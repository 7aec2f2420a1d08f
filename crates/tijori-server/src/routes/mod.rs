//! One module per resource.

pub(crate) mod audit;
pub(crate) mod keys;
pub(crate) mod principals;
pub(crate) mod subjects;
pub(crate) mod sys;
pub(crate) mod tokens;
