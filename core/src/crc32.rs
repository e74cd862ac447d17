//! CRC-32 of snapshot sections and memory images.

/// CRC-32 (IEEE 802.3, reflected 0xEDB88320, the one of zlib and
/// `node:zlib`'s `crc32`), slice-by-8.
pub struct Crc32(u32);

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static CRC: [[u32; 256]; 8] = crc_tables();

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh CRC.
    pub fn new() -> Self {
        Crc32(!0)
    }
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        let mut chunks = data.chunks_exact(8);
        for ch in &mut chunks {
            let lo = c ^ u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
            let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
            c = CRC[7][(lo & 0xff) as usize]
                ^ CRC[6][(lo >> 8 & 0xff) as usize]
                ^ CRC[5][(lo >> 16 & 0xff) as usize]
                ^ CRC[4][(lo >> 24) as usize]
                ^ CRC[3][(hi & 0xff) as usize]
                ^ CRC[2][(hi >> 8 & 0xff) as usize]
                ^ CRC[1][(hi >> 16 & 0xff) as usize]
                ^ CRC[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            c = CRC[0][((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }
    /// Feed one memory page as [`page_crc`] defines it.
    pub fn page(&mut self, index: u64, page: &[u8]) {
        self.update(&index.to_le_bytes());
        self.update(page);
    }
    /// The CRC of everything fed.
    pub fn finish(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        let mut c = Crc32::new();
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        c.update(&data[..3]);
        c.update(&data[3..]);
        let mut d = Crc32::new();
        for &b in &data {
            d.update(&[b]);
        }
        assert_eq!(c.finish(), d.finish());
    }
}
