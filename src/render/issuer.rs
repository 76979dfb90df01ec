//! Who issues a report: the issuer the certificate carries (`certify --issuer`), or for a
//! certificate issued without one, the file given to `report --issuer` (see
//! [`crate::certificate::issuer`]).

pub use crate::certificate::issuer::{Authoriser, Customer, Issuer, Lab};
