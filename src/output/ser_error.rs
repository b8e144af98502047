//! The error of pgtool's own serializers (the flattener for CSV and tables, the JSON writer):
//! a record type they cannot write, which is a bug in the record, not an input error.

use std::fmt;

/// Why a record could not be written.
#[derive(Debug)]
pub struct SerError(pub String);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl serde::ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerError(msg.to_string())
    }
}
