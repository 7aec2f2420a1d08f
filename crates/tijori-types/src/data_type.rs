//! The kinds of value a vault holds. Each has its own validation, normalized form and masking.

use serde::{Deserialize, Serialize};

/// A data type of API.md's table. The wire form is the snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    CardNumber,
    Iban,
    Cnic,
    PkMobile,
    BankAccount,
    CardSecurityCode,
    Text,
}

impl DataType {
    /// Every type, in API.md's order.
    pub const ALL: [DataType; 7] = [
        DataType::CardNumber,
        DataType::Iban,
        DataType::Cnic,
        DataType::PkMobile,
        DataType::BankAccount,
        DataType::CardSecurityCode,
        DataType::Text,
    ];

    /// The wire and storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataType::CardNumber => "card_number",
            DataType::Iban => "iban",
            DataType::Cnic => "cnic",
            DataType::PkMobile => "pk_mobile",
            DataType::BankAccount => "bank_account",
            DataType::CardSecurityCode => "card_security_code",
            DataType::Text => "text",
        }
    }

    /// The inverse of [`DataType::as_str`].
    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Values of this type live in memory only and never reach durable storage (API.md).
    pub const fn is_ephemeral(self) -> bool {
        matches!(self, DataType::CardSecurityCode)
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in DataType::ALL {
            assert_eq!(DataType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!(DataType::parse("cvv"), None);
    }
}
