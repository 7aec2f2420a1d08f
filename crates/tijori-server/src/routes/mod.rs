//! One module per resource.

pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod keys;
pub(crate) mod policy;
pub(crate) mod principals;
pub(crate) mod subjects;
pub(crate) mod sys;
pub(crate) mod tokens;
pub(crate) mod users;
