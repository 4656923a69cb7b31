//! Opaque Relay ids: `base64url("<Type>:<id>")`, the type being one of [`NodeType`].

use async_graphql::ID;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{AppError, AppResult};

/// The GraphQL types that have global ids, by the name their ids carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    User,
    ApiToken,
    Client,
    Project,
    Task,
    TimeEntry,
    Timesheet,
    LeaveType,
    LeaveRequest,
    Holiday,
    File,
    Invoice,
    InvoiceLine,
    Payment,
}

impl NodeType {
    const ALL: [NodeType; 14] = [
        Self::User,
        Self::ApiToken,
        Self::Client,
        Self::Project,
        Self::Task,
        Self::TimeEntry,
        Self::Timesheet,
        Self::LeaveType,
        Self::LeaveRequest,
        Self::Holiday,
        Self::File,
        Self::Invoice,
        Self::InvoiceLine,
        Self::Payment,
    ];

    /// The GraphQL type's name, as ids carry it.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::ApiToken => "ApiToken",
            Self::Client => "Client",
            Self::Project => "Project",
            Self::Task => "Task",
            Self::TimeEntry => "TimeEntry",
            Self::Timesheet => "Timesheet",
            Self::LeaveType => "LeaveType",
            Self::LeaveRequest => "LeaveRequest",
            Self::Holiday => "Holiday",
            Self::File => "File",
            Self::Invoice => "Invoice",
            Self::InvoiceLine => "InvoiceLine",
            Self::Payment => "Payment",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The global id of row `id` of `node_type`.
pub fn global_id(node_type: NodeType, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", node_type.name())))
}

/// Decodes a global id into its type (`None` for a name no type has) and row id.
pub fn decode_global_id(field: &str, id: &ID) -> AppResult<(Option<NodeType>, i64)> {
    let invalid = || AppError::bad_input(field, "not a valid id");
    let raw = URL_SAFE_NO_PAD.decode(id.as_str()).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (type_name, row_id) = raw.split_once(':').ok_or_else(invalid)?;
    let row_id = row_id.parse().map_err(|_| invalid())?;
    Ok((NodeType::from_name(type_name), row_id))
}

/// Decodes a global id that must be of `node_type`.
pub fn expect_global_id(field: &str, id: &ID, node_type: NodeType) -> AppResult<i64> {
    match decode_global_id(field, id)? {
        (Some(t), row_id) if t == node_type => Ok(row_id),
        _ => Err(AppError::bad_input(
            field,
            format!("not the id of a {}", node_type.name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_type() {
        for t in NodeType::ALL {
            let id = global_id(t, 42);
            assert_eq!(decode_global_id("id", &id).unwrap(), (Some(t), 42));
            assert_eq!(expect_global_id("id", &id, t).unwrap(), 42);
        }
        assert_eq!(global_id(NodeType::User, 7).0, "VXNlcjo3");
        let user = global_id(NodeType::User, 1);
        let err = expect_global_id("owner", &user, NodeType::Client).unwrap_err();
        assert_eq!(err.message(), "not the id of a Client");
        let unknown = ID(URL_SAFE_NO_PAD.encode("Nothing:1"));
        assert_eq!(decode_global_id("id", &unknown).unwrap(), (None, 1));
        assert!(decode_global_id("id", &ID("%%".into())).is_err());
    }
}
