//! Error type of the core: a code for the FFI boundary plus a message.

use std::fmt;

/// Error codes returned across the C ABI (always negative there).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Unknown or destroyed handle.
    BadHandle = -1,
    /// Invalid argument from the caller.
    InvalidArgument = -2,
    /// A KVM or OS call failed (errno in the message).
    Os = -3,
    /// The guest image could not be loaded.
    BadImage = -4,
    /// `/dev/kvm` is missing or not accessible.
    NoKvm = -5,
    /// A panic was caught at the boundary.
    Panic = -6,
    /// The object is busy (for example a vCPU already running).
    Busy = -7,
    /// A capability the operation needs is not supported by this KVM.
    Unsupported = -8,
}

/// An error with a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Category, returned across FFI.
    pub code: Code,
    /// Message, available through the last-error call.
    pub message: String,
}

impl Error {
    /// Build an error.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    /// Invalid argument.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }
    /// An OS/KVM failure with context.
    pub fn os(context: &str, err: impl fmt::Display) -> Self {
        Error::new(Code::Os, format!("{context}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias for the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Map a `kvm_ioctls` error to ours, keeping errno text at the top.
pub fn kvm(context: &str) -> impl Fn(kvm_ioctls::Error) -> Error + '_ {
    move |e| Error::os(context, e)
}
