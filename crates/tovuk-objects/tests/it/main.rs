//! Integration tests: real sockets, real files, real S3 clients (boto3 from PyPI, rclone, raw SigV4 HTTP).

mod boto3;
mod caps;
mod chunked;
mod durability;
mod rclone;
mod streaming;
mod support;
