//! Integration tests over real HTTP: the server bound to `127.0.0.1:0`, on a manual
//! clock, so expiry and interval rules are checked by moving time, never by sleeping.
//! Each test names the checklist rows (../shared/rfc8628-checklist.md) it holds the
//! server to.

mod common;

mod applications_page;
mod audit;
mod bad_input;
mod binary;
mod browser;
mod clients_command;
mod concurrency;
mod config_hostile;
mod device_authorization;
mod instances;
mod interop;
mod metadata;
mod pages_hostile;
mod person;
mod polling;
mod proxies;
mod registration;
mod shutdown;
mod sign_in;
mod state_machine;
mod third_party;
mod token;
mod token_management;
mod tokens_hostile;
mod verification;
mod verification_pages;
