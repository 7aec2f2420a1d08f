//! Tijori's vocabulary: the data types a vault accepts, how each is validated, normalized and
//! masked, the shapes of format-preserving tokens, the stable error codes and the API's
//! request/response structs. This crate does no I/O and holds no keys; it must never put a
//! submitted value into an error or a `Debug` string.
#![forbid(unsafe_code)]

pub mod api;
mod code;
mod data_type;
pub mod format;
pub mod mask;
pub mod validate;

pub use code::ErrorCode;
pub use data_type::DataType;
pub use validate::{normalize, ValidationError};
