//! End-to-end tests: real servers on port 0 (SQLite files in temporary directories) driven
//! over HTTP. One test binary, one module per area.

mod accounts;
mod bad_input;
mod cluster;
mod conversations;
mod crash;
mod departments;
mod directory;
mod files;
mod harness;
mod limits;
mod messaging;
mod ops;
mod permissions;
mod realtime;
mod search;
mod setup;
mod ws;
