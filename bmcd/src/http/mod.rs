//! The HTTP edge: TLS, connection limits, request parsing and response headers.

pub mod der;
pub mod server;
pub mod tls;
pub mod x509;
