//! End-to-end tests: the real `tovuk` binary, a real server on 127.0.0.1:0, real HTTP.

mod support;

mod addons;
mod apps;
mod architecture;
mod auth;
mod bindings;
mod build;
mod check;
mod contained;
mod control;
mod cron;
mod detect;
mod docs;
mod durability;
mod edge_auth;
mod instances;
mod lifecycle;
mod network;
mod orders;
mod push;
mod queues;
mod readiness;
mod release;
mod release_phase;
mod resources;
mod rollback;
mod secrets;
mod server;
mod source;
mod state;
mod targets;
mod tidy;
mod upload;
mod usage;
