import assert from "node:assert/strict";
import { prng } from "../testing/prng.ts";
import {
  I8259_ELCR_MASTER,
  I8259_ELCR_SLAVE,
  I8259_MASTER_COMMAND as M_CMD,
  I8259_MASTER_DATA as M_DATA,
  I8259_OCW2_EOI,
  I8259_OCW2_NOP,
  I8259_OCW2_ROTATE_AEOI_CLEAR,
  I8259_OCW2_ROTATE_AEOI_SET,
  I8259_OCW2_ROTATE_EOI,
  I8259_OCW2_ROTATE_SPECIFIC_EOI,
  I8259_OCW2_SET_PRIORITY,
  I8259_OCW2_SPECIFIC_EOI,
  I8259_OCW3_POLL,
  I8259_OCW3_READ_IRR,
  I8259_OCW3_READ_ISR,
  I8259_OCW3_SELECT,
  I8259_SLAVE_COMMAND as S_CMD,
  I8259_SLAVE_DATA as S_DATA,
  Pic8259,
  PicPair,
  type PicPairState,
} from "./pic_8259.ts";

/** Linux `init_8259A`: ICW1 0x11, ICW2 0x20/0x28, ICW3 4/2, ICW4. */
function linuxInit(pic: PicPair, icw4Master = 0x01, icw4Slave = 0x01): void {
  pic.write(M_CMD, 0x11);
  pic.write(M_DATA, 0x20);
  pic.write(M_DATA, 0x04);
  pic.write(M_DATA, icw4Master);
  pic.write(S_CMD, 0x11);
  pic.write(S_DATA, 0x28);
  pic.write(S_DATA, 0x02);
  pic.write(S_DATA, icw4Slave);
}

function initialized(icw4Master = 0x01, icw4Slave = 0x01): PicPair {
  const pic = new PicPair();
  linuxInit(pic, icw4Master, icw4Slave);
  return pic;
}

function pulse(pic: PicPair, irq: number): void {
  pic.setLevel(irq, true);
  pic.setLevel(irq, false);
}

function readIsr(pic: PicPair, port: number): number {
  pic.write(port, I8259_OCW3_READ_ISR);
  return pic.read(port);
}

function readIrr(pic: PicPair, port: number): number {
  pic.write(port, I8259_OCW3_READ_IRR);
  return pic.read(port);
}

/** Acknowledge and EOI (slave first when cascaded) until nothing is left. */
function drain(pic: PicPair): number[] {
  const out: number[] = [];
  while (pic.interruptPending) {
    const v = pic.acknowledge();
    out.push(v);
    if (v >= 0x28) pic.write(S_CMD, I8259_OCW2_EOI);
    pic.write(M_CMD, I8259_OCW2_EOI);
  }
  return out;
}

Deno.test("8259A pair", async (t) => {
  await t.step("power-on state", () => {
    const pic = new PicPair();
    assert.equal(pic.interruptPending, false);
    assert.equal(pic.read(M_DATA), 0);
    assert.equal(pic.read(S_DATA), 0);
    assert.equal(pic.read(M_CMD), 0);
    assert.equal(pic.read(I8259_ELCR_MASTER), 0);
    assert.equal(pic.elcr, 0);
    assert.equal(pic.master.isMaster, true);
    assert.equal(pic.slave.isMaster, false);
  });

  await t.step("Linux init sequence", () => {
    const pic = initialized();
    assert.equal(pic.master.vectorBase, 0x20);
    assert.equal(pic.slave.vectorBase, 0x28);
    assert.equal(pic.master.initializing, false);
    assert.equal(pic.slave.initializing, false);
    assert.equal(pic.master.autoEoi, false);
    assert.equal(pic.stats.inits, 2);
    // The next data write is OCW1 (IMR).
    pic.write(M_DATA, 0xfb);
    assert.equal(pic.read(M_DATA), 0xfb);
    // ICW2 low 3 bits are ignored.
    pic.write(M_CMD, 0x11);
    assert.equal(pic.master.initializing, true);
    pic.write(M_DATA, 0x27);
    pic.write(M_DATA, 0x04);
    pic.write(M_DATA, 0x01);
    assert.equal(pic.master.vectorBase, 0x20);
    assert.equal(pic.read(M_DATA), 0, "ICW1 cleared the IMR");
  });

  await t.step("edge IRQ: pending, INTA vector, ISR, EOI", () => {
    const pic = initialized();
    pic.setLevel(3, true);
    assert.equal(pic.interruptPending, true);
    assert.equal(pic.read(M_CMD), 0x08, "IRR by default");
    assert.equal(pic.acknowledge(), 0x23);
    assert.equal(readIsr(pic, M_CMD), 0x08);
    assert.equal(readIrr(pic, M_CMD), 0, "edge latch cleared at INTA");
    assert.equal(pic.interruptPending, false);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(readIsr(pic, M_CMD), 0);
    assert.equal(pic.stats.eois, 1);
    // Held high: no new request.
    pic.setLevel(3, true);
    assert.equal(pic.interruptPending, false);
    // A new rising edge requests again.
    pic.setLevel(3, false);
    pic.setLevel(3, true);
    assert.equal(pic.interruptPending, true);
    assert.equal(pic.acknowledge(), 0x23);
    pic.write(M_CMD, I8259_OCW2_EOI);
    // A pulse (raise + lower before INTA) stays latched.
    pulse(pic, 4);
    assert.equal(pic.interruptPending, true);
    assert.equal(pic.acknowledge(), 0x24);
    assert.equal(pic.stats.acks, 3);
  });

  await t.step("priority: lower IRQ wins; nesting", () => {
    const pic = initialized();
    pulse(pic, 5);
    pulse(pic, 3);
    assert.equal(pic.acknowledge(), 0x23);
    assert.equal(pic.interruptPending, false, "IRQ 5 waits behind 3");
    pulse(pic, 1);
    assert.equal(pic.interruptPending, true, "IRQ 1 nests over 3");
    assert.equal(pic.acknowledge(), 0x21);
    assert.equal(readIsr(pic, M_CMD), 0x0a);
    pic.write(M_CMD, I8259_OCW2_EOI); // retires 1, the highest in service
    assert.equal(pic.read(M_CMD), 0x08);
    assert.equal(pic.interruptPending, false);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, true);
    assert.equal(pic.acknowledge(), 0x25);
  });

  await t.step("IMR masking", () => {
    const pic = initialized();
    pic.write(M_DATA, 0x10);
    assert.equal(pic.read(M_DATA), 0x10);
    pulse(pic, 4);
    assert.equal(pic.interruptPending, false);
    assert.equal(readIrr(pic, M_CMD), 0x10, "masked request latched");
    pic.write(M_DATA, 0x00);
    assert.equal(pic.interruptPending, true);
    assert.equal(pic.acknowledge(), 0x24);
    // Masking the slave's cascade input on the master hides the slave.
    pic.write(M_CMD, I8259_OCW2_EOI);
    pic.write(M_DATA, 0x04);
    pulse(pic, 12);
    assert.equal(pic.interruptPending, false);
    pic.write(M_DATA, 0x00);
    assert.equal(pic.acknowledge(), 0x2c);
  });

  await t.step("slave IRQ 10 through the cascade", () => {
    const pic = initialized();
    pic.setLevel(10, true);
    assert.equal(pic.interruptPending, true);
    assert.equal(readIrr(pic, M_CMD), 0x04, "master IR2 requested");
    assert.equal(readIrr(pic, S_CMD), 0x04);
    assert.equal(pic.acknowledge(), 0x2a);
    assert.equal(readIsr(pic, M_CMD), 0x04);
    assert.equal(readIsr(pic, S_CMD), 0x04);
    assert.equal(pic.interruptPending, false);
    pic.write(S_CMD, I8259_OCW2_EOI);
    assert.equal(pic.read(S_CMD), 0);
    assert.equal(pic.read(M_CMD), 0x04, "master still in service");
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.read(M_CMD), 0);
    assert.equal(pic.stats.eois, 2);
    pic.setLevel(10, false);
    // Slave IRQs rank between master IRQ 1 and IRQ 3.
    pulse(pic, 3);
    pulse(pic, 10);
    pulse(pic, 1);
    pulse(pic, 15);
    assert.deepEqual(drain(pic), [0x21, 0x2a, 0x2f, 0x23]);
  });

  await t.step("slave: a second request after the slave EOI", () => {
    const pic = initialized();
    pulse(pic, 11);
    pulse(pic, 9);
    assert.equal(pic.acknowledge(), 0x29);
    assert.equal(pic.interruptPending, false);
    pic.write(S_CMD, I8259_OCW2_EOI);
    // Slave INT is high again (IRQ 11), but master IR2 is in service.
    assert.equal(pic.interruptPending, false);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, true);
    assert.equal(pic.acknowledge(), 0x2b);
  });

  await t.step("auto-EOI", () => {
    const pic = initialized(0x03, 0x03);
    assert.equal(pic.master.autoEoi, true);
    pulse(pic, 6);
    assert.equal(pic.acknowledge(), 0x26);
    assert.equal(readIsr(pic, M_CMD), 0);
    pulse(pic, 7);
    assert.equal(pic.interruptPending, true, "no EOI needed");
    assert.equal(pic.acknowledge(), 0x27);
    pulse(pic, 14);
    assert.equal(pic.acknowledge(), 0x2e);
    assert.equal(readIsr(pic, M_CMD), 0);
    assert.equal(readIsr(pic, S_CMD), 0);
    assert.equal(pic.stats.acks, 3);
    // Rotate in AEOI mode: the acknowledged level becomes lowest.
    pic.write(M_CMD, I8259_OCW2_ROTATE_AEOI_SET);
    pulse(pic, 3);
    assert.equal(pic.acknowledge(), 0x23);
    assert.equal(pic.master.highestPriority, 4);
    pulse(pic, 3);
    pulse(pic, 5);
    assert.equal(pic.acknowledge(), 0x25);
    assert.equal(pic.master.highestPriority, 6);
    pic.write(M_CMD, I8259_OCW2_ROTATE_AEOI_CLEAR);
    assert.equal(pic.acknowledge(), 0x23);
    assert.equal(pic.master.highestPriority, 6);
  });

  await t.step("level mode via ELCR", () => {
    const pic = initialized();
    pic.write(I8259_ELCR_MASTER, 0x20);
    assert.equal(pic.read(I8259_ELCR_MASTER), 0x20);
    pic.setLevel(5, true);
    assert.equal(readIrr(pic, M_CMD), 0x20);
    assert.equal(pic.acknowledge(), 0x25);
    assert.equal(pic.read(M_CMD), 0x20, "IRR follows the line");
    assert.equal(pic.interruptPending, false, "in service");
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, true, "re-requests while high");
    assert.equal(pic.acknowledge(), 0x25);
    pic.setLevel(5, false);
    assert.equal(pic.read(M_CMD), 0);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, false);
    // Slave level line (IRQ 11) through ELCR2.
    pic.write(I8259_ELCR_SLAVE, 0x08);
    assert.equal(pic.elcr, 0x0820);
    pic.setLevel(11, true);
    assert.equal(pic.acknowledge(), 0x2b);
    pic.write(S_CMD, I8259_OCW2_EOI);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, true);
    assert.equal(pic.acknowledge(), 0x2b);
    pic.setLevel(11, false);
    pic.write(S_CMD, I8259_OCW2_EOI);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, false);
    // Switching a high line to level mode requests at once.
    pic.setLevel(6, true);
    assert.equal(pic.acknowledge(), 0x26);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, false);
    pic.write(I8259_ELCR_MASTER, 0x60);
    assert.equal(pic.interruptPending, true);
  });

  await t.step("ICW1 LTIM: every input level-triggered", () => {
    const pic = new PicPair();
    pic.write(M_CMD, 0x19);
    pic.write(M_DATA, 0x20);
    pic.write(M_DATA, 0x04);
    pic.write(M_DATA, 0x01);
    assert.equal(pic.master.levelMask, 0xff);
    pic.setLevel(0, true);
    assert.equal(pic.read(M_CMD), 0x01);
    pic.setLevel(0, false);
    assert.equal(pic.read(M_CMD), 0);
    assert.equal(pic.interruptPending, false);
  });

  await t.step("spurious IRQ 7 and IRQ 15", () => {
    const pic = initialized();
    pic.write(I8259_ELCR_MASTER, 0x20);
    pic.setLevel(5, true);
    assert.equal(pic.interruptPending, true);
    pic.setLevel(5, false); // the request vanishes before INTA
    assert.equal(pic.interruptPending, false);
    assert.equal(pic.acknowledge(), 0x27);
    assert.equal(readIsr(pic, M_CMD), 0, "spurious IRQ 7 sets no ISR bit");
    assert.equal(pic.stats.spurious, 1);
    // Masked after the request: spurious too.
    pulse(pic, 4);
    pic.write(M_DATA, 0x10);
    assert.equal(pic.acknowledge(), 0x27);
    pic.write(M_DATA, 0x00);
    assert.equal(pic.acknowledge(), 0x24);
    pic.write(M_CMD, I8259_OCW2_EOI);
    // Slave request vanishes after master IR2 latched: slave base + 7.
    pic.write(I8259_ELCR_SLAVE, 0x08);
    pic.setLevel(11, true);
    pic.setLevel(11, false);
    assert.equal(pic.interruptPending, true, "master IR2 stays latched");
    assert.equal(pic.acknowledge(), 0x2f);
    assert.equal(readIsr(pic, M_CMD), 0x04, "master took IR2");
    assert.equal(readIsr(pic, S_CMD), 0, "slave has nothing in service");
    assert.equal(pic.stats.spurious, 3);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.read(M_CMD), 0);
    assert.equal(pic.interruptPending, false);
  });

  await t.step("OCW3 read IRR / ISR selection", () => {
    const pic = initialized();
    pulse(pic, 1);
    pulse(pic, 6);
    pic.acknowledge();
    pic.write(M_CMD, I8259_OCW3_READ_ISR);
    assert.equal(pic.read(M_CMD), 0x02);
    assert.equal(pic.read(M_CMD), 0x02, "selection persists");
    pic.write(M_CMD, I8259_OCW3_SELECT); // RR = 0: no change
    assert.equal(pic.read(M_CMD), 0x02);
    pic.write(M_CMD, I8259_OCW3_READ_IRR);
    assert.equal(pic.read(M_CMD), 0x40);
    assert.equal(pic.read(M_DATA), 0x00, "data port reads the IMR");
  });

  await t.step("poll command", () => {
    const pic = initialized();
    pic.write(M_DATA, 0xff); // polled systems mask the INT output
    pulse(pic, 3);
    pulse(pic, 5);
    assert.equal(pic.interruptPending, false);
    pic.write(M_DATA, 0x00);
    pic.write(M_CMD, I8259_OCW3_SELECT | I8259_OCW3_POLL);
    assert.equal(pic.read(M_CMD), 0x83);
    assert.equal(readIsr(pic, M_CMD), 0x08, "the poll read acknowledged");
    assert.equal(readIrr(pic, M_CMD), 0x20);
    assert.equal(pic.read(M_CMD), 0x20, "one read per poll command");
    pic.write(M_CMD, I8259_OCW2_EOI);
    pic.write(M_CMD, I8259_OCW3_SELECT | I8259_OCW3_POLL);
    assert.equal(pic.read(M_DATA), 0x85, "any RD pulse answers the poll");
    pic.write(M_CMD, I8259_OCW2_EOI);
    pic.write(M_CMD, I8259_OCW3_SELECT | I8259_OCW3_POLL);
    assert.equal(pic.read(M_CMD), 0x00, "nothing pending");
    assert.equal(pic.stats.polls, 3);
    assert.equal(pic.stats.acks, 0, "polls are not INTA cycles");
  });

  await t.step("specific EOI", () => {
    const pic = initialized();
    pulse(pic, 3);
    pic.acknowledge();
    pulse(pic, 1);
    pic.acknowledge();
    assert.equal(readIsr(pic, M_CMD), 0x0a);
    pic.write(M_CMD, I8259_OCW2_SPECIFIC_EOI | 3);
    assert.equal(pic.read(M_CMD), 0x02);
    pic.write(M_CMD, I8259_OCW2_SPECIFIC_EOI | 3);
    assert.equal(pic.stats.emptyEois, 1);
    pic.write(M_CMD, I8259_OCW2_SPECIFIC_EOI | 1);
    assert.equal(pic.read(M_CMD), 0);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.stats.eois, 2);
    assert.equal(pic.stats.emptyEois, 2);
  });

  await t.step("priority rotation", () => {
    const pic = initialized();
    // Rotate on non-specific EOI: the serviced level becomes lowest.
    pulse(pic, 3);
    assert.equal(pic.acknowledge(), 0x23);
    pic.write(M_CMD, I8259_OCW2_ROTATE_EOI);
    assert.equal(pic.master.highestPriority, 4);
    pulse(pic, 3);
    pulse(pic, 5);
    pulse(pic, 0);
    assert.deepEqual(drain(pic), [0x25, 0x20, 0x23]);
    // Set priority: IRQ 4 lowest, so 5 is highest.
    pic.write(M_CMD, I8259_OCW2_SET_PRIORITY | 4);
    assert.equal(pic.master.highestPriority, 5);
    pulse(pic, 4);
    pulse(pic, 7);
    pulse(pic, 6);
    assert.deepEqual(drain(pic), [0x26, 0x27, 0x24]);
    // Rotate on specific EOI.
    pic.write(M_CMD, I8259_OCW2_SET_PRIORITY | 7);
    pulse(pic, 6);
    assert.equal(pic.acknowledge(), 0x26);
    pic.write(M_CMD, I8259_OCW2_ROTATE_SPECIFIC_EOI | 6);
    assert.equal(readIsr(pic, M_CMD), 0);
    assert.equal(pic.master.highestPriority, 7);
    // Rotated non-specific EOI retires the highest in *rotated* order.
    pulse(pic, 0);
    pic.acknowledge();
    pulse(pic, 7);
    pic.acknowledge(); // 7 nests over 0 (7 is now highest)
    assert.equal(pic.read(M_CMD), 0x81);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.read(M_CMD), 0x01);
  });

  await t.step("special mask mode", () => {
    const pic = initialized();
    pulse(pic, 3);
    assert.equal(pic.acknowledge(), 0x23);
    pulse(pic, 5);
    assert.equal(pic.interruptPending, false);
    pic.write(M_CMD, 0x68); // OCW3: ESMM | SMM
    assert.equal(pic.master.specialMask, true);
    pic.write(M_DATA, 0x08); // mask the level in service
    assert.equal(pic.interruptPending, true, "lower level enabled");
    assert.equal(pic.acknowledge(), 0x25);
    assert.equal(readIsr(pic, M_CMD), 0x28);
    pulse(pic, 6);
    assert.equal(pic.interruptPending, false, "unmasked 5 still blocks 6");
    pic.write(M_CMD, I8259_OCW2_SPECIFIC_EOI | 5);
    assert.equal(pic.acknowledge(), 0x26);
    pic.write(M_CMD, I8259_OCW2_SPECIFIC_EOI | 6);
    pic.write(M_CMD, 0x48); // OCW3: ESMM, SMM clear
    assert.equal(pic.master.specialMask, false);
    pic.write(M_DATA, 0x00);
    pulse(pic, 7);
    assert.equal(pic.interruptPending, false, "3 in service blocks again");
    pic.write(M_CMD, 0x28); // SMM without ESMM: no change
    assert.equal(pic.master.specialMask, false);
  });

  await t.step("special fully nested mode on the master", () => {
    for (const sfnm of [false, true]) {
      const pic = initialized(sfnm ? 0x11 : 0x01);
      pulse(pic, 12);
      assert.equal(pic.acknowledge(), 0x2c);
      pulse(pic, 9); // higher priority on the slave
      assert.equal(pic.interruptPending, sfnm);
      if (sfnm) {
        assert.equal(pic.acknowledge(), 0x29);
        assert.equal(readIsr(pic, S_CMD), 0x12);
      }
    }
  });

  await t.step("ELCR read-only bits", () => {
    const pic = initialized();
    pic.write(I8259_ELCR_MASTER, 0xff);
    pic.write(I8259_ELCR_SLAVE, 0xff);
    assert.equal(pic.read(I8259_ELCR_MASTER), 0xf8);
    assert.equal(pic.read(I8259_ELCR_SLAVE), 0xde);
    assert.equal(pic.elcr, 0xdef8);
    pic.setLevel(0, true); // IRQ 0 stays edge
    pic.acknowledge();
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(pic.interruptPending, false);
    // ELCR survives ICW1.
    linuxInit(pic);
    assert.equal(pic.elcr, 0xdef8);
  });

  await t.step("ICW1 resets IMR, ISR, edge state, rotation, SMM", () => {
    const pic = initialized();
    pic.setLevel(3, true);
    pic.acknowledge();
    pulse(pic, 4);
    pic.write(M_DATA, 0xf0);
    pic.write(M_CMD, I8259_OCW2_SET_PRIORITY | 2);
    pic.write(M_CMD, 0x68);
    pic.write(M_CMD, I8259_OCW3_READ_ISR);
    pic.write(I8259_ELCR_MASTER, 0x40);
    pic.setLevel(6, true);
    linuxInit(pic);
    assert.equal(pic.read(M_DATA), 0);
    assert.equal(pic.master.isr, 0);
    assert.equal(pic.master.highestPriority, 0);
    assert.equal(pic.master.specialMask, false);
    assert.equal(pic.read(M_CMD), 0x40, "reads IRR; only the level line");
    assert.equal(pic.acknowledge(), 0x26);
    pic.setLevel(6, false);
    pic.write(M_CMD, I8259_OCW2_EOI);
    // IRQ 3 was high through ICW1: it must rise again.
    pic.setLevel(3, true);
    assert.equal(pic.interruptPending, false);
    pic.setLevel(3, false);
    pic.setLevel(3, true);
    assert.equal(pic.acknowledge(), 0x23);
  });

  await t.step("ICW sequences: single mode, no ICW4", () => {
    const chip = new Pic8259();
    chip.write(0, 0x13); // single, IC4: ICW2, ICW4 (no ICW3)
    chip.write(1, 0x48);
    assert.equal(chip.initializing, true);
    chip.write(1, 0x03);
    assert.equal(chip.initializing, false);
    assert.equal(chip.autoEoi, true);
    chip.write(1, 0x55);
    assert.equal(chip.imr, 0x55);
    // No IC4: ICW4 functions are zero; ICW3 is the last word.
    chip.write(0, 0x10);
    chip.write(1, 0x50);
    chip.write(1, 0x04);
    assert.equal(chip.initializing, false);
    assert.equal(chip.autoEoi, false);
    chip.write(1, 0x0f);
    assert.equal(chip.imr, 0x0f);
    // Single and no IC4: ICW2 is the only word.
    chip.write(0, 0x12);
    chip.write(1, 0x58);
    assert.equal(chip.vectorBase, 0x58);
    assert.equal(chip.initializing, false);
    chip.setLevel(2, true);
    assert.equal(chip.pendingIrq(), 2);
    chip.acknowledgeIrq(2);
    assert.equal(chip.isr, 0x04);
  });

  await t.step("OCW2 no-op and bad ports are counted", () => {
    const pic = initialized();
    pic.write(M_CMD, I8259_OCW2_NOP);
    assert.equal(pic.stats.nopCommands, 1);
    assert.equal(pic.read(0x22), 0xff);
    pic.write(0x4d2, 1);
    assert.equal(pic.stats.badAccesses, 2);
    const chip = new Pic8259();
    assert.equal(chip.read(2), 0xff);
    chip.write(-1, 0);
    assert.equal(chip.stats.badAccesses, 2);
  });

  await t.step("line numbers: cascade and GSI >= 16 ignored", () => {
    const pic = initialized();
    for (const g of [2, 16, 23, 1000]) pic.setLevel(g, true);
    assert.equal(pic.stats.ignoredLines, 4);
    for (const g of [-1, 1.5, NaN, Infinity]) pic.setLevel(g, true);
    assert.equal(pic.stats.badLines, 4);
    assert.equal(pic.interruptPending, false);
    const chip = new Pic8259();
    chip.setLevel(8, true);
    assert.equal(chip.stats.badLines, 1);
    chip.acknowledgeIrq(9); // ignored
    assert.equal(chip.isr, 0);
  });

  await t.step("onChange fires on every output change", () => {
    let calls = 0;
    let seen = false;
    const pic = new PicPair({
      onChange: () => {
        calls++;
        assert.notEqual(pic.interruptPending, seen);
        seen = pic.interruptPending;
      },
    });
    linuxInit(pic);
    assert.equal(calls, 0);
    pulse(pic, 3);
    assert.equal(calls, 1);
    pulse(pic, 4); // still pending: no call
    assert.equal(calls, 1);
    pic.acknowledge(); // 4 blocked behind 3
    assert.equal(calls, 2);
    pic.write(M_CMD, I8259_OCW2_EOI);
    assert.equal(calls, 3);
    pic.write(M_DATA, 0xff);
    assert.equal(calls, 4);
    assert.equal(seen, false);
    // Re-entrant: the host acknowledges from the callback.
    const got: number[] = [];
    pic.onChange = () => {
      if (pic.interruptPending) got.push(pic.acknowledge());
    };
    pic.write(M_DATA, 0x00);
    assert.deepEqual(got, [0x24]);
    assert.equal(pic.interruptPending, false);
  });

  await t.step("reset: power-on state, stats kept", () => {
    let calls = 0;
    const pic = new PicPair({ onChange: () => calls++ });
    linuxInit(pic);
    pic.write(I8259_ELCR_MASTER, 0x20);
    pic.setLevel(5, true);
    assert.equal(calls, 1);
    pic.reset();
    assert.equal(calls, 2);
    assert.equal(pic.interruptPending, false);
    assert.equal(pic.elcr, 0);
    assert.equal(pic.master.vectorBase, 0);
    assert.equal(pic.master.lines, 0x20, "line levels are kept");
    assert.equal(pic.stats.inits, 2);
    pic.setLevel(5, false);
    assert.deepEqual(pic.snapshot(), new PicPair().snapshot());
  });

  await t.step("snapshot / restore", () => {
    const a = initialized(0x01, 0x03);
    a.write(I8259_ELCR_MASTER, 0x20);
    a.write(I8259_ELCR_SLAVE, 0x02);
    a.setLevel(5, true);
    a.setLevel(9, true);
    pulse(a, 3);
    pulse(a, 12);
    a.acknowledge();
    a.write(M_CMD, I8259_OCW2_SET_PRIORITY | 0);
    a.write(M_CMD, I8259_OCW3_READ_ISR);
    const s = a.snapshot();
    let calls = 0;
    const b = new PicPair({ onChange: () => calls++ });
    b.restore(JSON.parse(JSON.stringify(s)));
    assert.deepEqual(b.snapshot(), s);
    assert.equal(calls, b.interruptPending ? 1 : 0);
    assert.deepEqual(drain(b), drain(a));
    assert.deepEqual(b.snapshot(), a.snapshot());

    const bad = (f: (x: Record<string, unknown>) => void): PicPairState => {
      const x = structuredClone(s) as unknown as Record<string, unknown>;
      f(x);
      return x as unknown as PicPairState;
    };
    const m = (x: Record<string, unknown>) =>
      x.master as Record<string, unknown>;
    const cases: PicPairState[] = [
      null as unknown as PicPairState,
      bad((x) => x.version = 2),
      bad((x) => delete x.slave),
      bad((x) => m(x).irr = 256),
      bad((x) => m(x).imr = -1),
      bad((x) => m(x).isr = 1.5),
      bad((x) => m(x).vectorBase = 0x21),
      bad((x) => m(x).elcr = 0x07),
      bad((x) => (x.slave as Record<string, unknown>).elcr = 0x01),
      bad((x) => m(x).highestPriority = 8),
      bad((x) => m(x).initState = 4),
      bad((x) => m(x).poll = 1),
      bad((x) => delete m(x).autoEoi),
    ];
    const before = b.snapshot();
    for (const c of cases) {
      assert.throws(() => b.restore(c), TypeError);
      assert.deepEqual(b.snapshot(), before, "unchanged after a bad state");
    }
  });

  await t.step("randomized: fully nested priority order", () => {
    const order = [0, 1, 8, 9, 10, 11, 12, 13, 14, 15, 3, 4, 5, 6, 7];
    const rnd = prng(0x8259);
    for (let round = 0; round < 300; round++) {
      const pic = initialized();
      const set = order.filter(() => rnd() < 0.4);
      const shuffled = [...set].sort(() => rnd() - 0.5);
      for (const irq of shuffled) {
        if (rnd() < 0.5) pulse(pic, irq);
        else pic.setLevel(irq, true);
      }
      const want = set.map((irq) => irq < 8 ? 0x20 + irq : 0x28 + irq - 8);
      assert.deepEqual(drain(pic), want, `round ${round}: ${shuffled}`);
      assert.equal(pic.master.isr | pic.slave.isr, 0);
    }
  });

  await t.step(
    "hostile guest: random bytes never throw, invariants hold",
    () => {
      const rnd = prng(0xdecaf);
      const ports = [
        M_CMD,
        M_DATA,
        S_CMD,
        S_DATA,
        I8259_ELCR_MASTER,
        I8259_ELCR_SLAVE,
        0x22,
        0x4d2,
      ];
      let seen = false;
      const pic = new PicPair({ onChange: () => seen = pic.interruptPending });
      const byte = () => Math.floor(rnd() * 256);
      const isrs = () => [pic.master.isr, pic.slave.isr];
      const singleBit = (x: number) => (x & (x - 1)) === 0;
      for (let i = 0; i < 20_000; i++) {
        const before = isrs();
        const polls = pic.stats.polls;
        const r = rnd();
        let allowed = [0, 0];
        if (r < 0.4) {
          pic.write(ports[Math.floor(rnd() * ports.length)], byte());
        } else if (r < 0.55) {
          const port = ports[Math.floor(rnd() * ports.length)];
          const v = pic.read(port);
          assert.ok(v >= 0 && v <= 0xff);
          if (pic.stats.polls !== polls && (v & 0x80) !== 0) {
            const chip = port === M_CMD || port === M_DATA ? 0 : 1;
            allowed[chip] = 1 << (v & 7);
          }
        } else if (r < 0.85) {
          pic.setLevel(Math.floor(rnd() * 18) - 1, rnd() < 0.5);
        } else if (r < 0.97) {
          const pending = pic.interruptPending;
          const mBase = pic.master.vectorBase;
          const v = pic.acknowledge();
          assert.ok(v >= 0 && v <= 0xff);
          if (!pending) {
            assert.equal(v, mBase + 7, "spurious master vector");
          }
          const gained = isrs().map((x, k) => x & ~before[k]);
          assert.ok(singleBit(gained[0]) && singleBit(gained[1]));
          if (gained[1] !== 0) {
            assert.ok(pending, "slave acknowledged only through the master");
          }
          if (gained[0] !== 0 && gained[0] !== 0x04) {
            assert.equal(v, mBase + Math.log2(gained[0]));
          }
          allowed = gained;
        } else if (r < 0.99) {
          const s = pic.snapshot();
          const copy = new PicPair();
          copy.restore(JSON.parse(JSON.stringify(s)));
          assert.deepEqual(copy.snapshot(), s);
          assert.equal(copy.interruptPending, pic.interruptPending);
        } else {
          pic.reset();
        }
        // ISR bits appear only through an INTA cycle or a poll read.
        const after = isrs();
        for (let k = 0; k < 2; k++) {
          assert.equal(
            after[k] & ~before[k] & ~allowed[k],
            0,
            `step ${i}: ISR gained bits outside INTA`,
          );
        }
        for (const chip of [pic.master, pic.slave]) {
          for (
            const x of [chip.irr, chip.imr, chip.isr, chip.elcr, chip.lines]
          ) {
            assert.ok(Number.isInteger(x) && x >= 0 && x <= 0xff);
          }
          assert.equal(chip.irr & chip.levelMask, chip.lines & chip.levelMask);
        }
        assert.equal(pic.master.elcr & 0x07, 0);
        assert.equal(pic.slave.elcr & 0x21, 0);
        assert.equal(seen, pic.interruptPending, `step ${i}: onChange missed`);
      }
      assert.ok(pic.stats.inits > 0 && pic.stats.acks > 0);
      assert.ok(pic.stats.eois > 0 && pic.stats.polls > 0);
    },
  );
});
