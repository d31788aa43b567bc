//! Integration tests of the router over real sockets: a router and backends on `127.0.0.1:0`.

mod limits;
mod proxying;
mod routing;
mod static_files;
mod support;
mod swap;
mod upgrade;
