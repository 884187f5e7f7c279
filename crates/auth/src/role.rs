//! The roles a member of an organization (or an API token) can hold. The vocabulary is the
//! domain's (`marquee_domain::organization::Role`): re-exported here so the security code and
//! the organization aggregate can never disagree on a role's name.

pub use marquee_domain::organization::Role;
