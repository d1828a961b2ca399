//! Paths: the route table (matching, `Allow`, iLO's case-insensitive spelling), percent-decoding
//! of path parameters, the personas' path maps and scope, and console-proxy's console paths.
#![no_main]

use std::sync::OnceLock;

use bmcd::personas::{Endpoint, PersonaKind, Routers};
use bmcd::router::{self, Match, Router};
use hyper::Method;
use libfuzzer_sys::fuzz_target;
use redfin_console_protocol::{console_path, parse_console_path};

fn routers() -> &'static (Router, Routers) {
    static R: OnceLock<(Router, Routers)> = OnceLock::new();
    R.get_or_init(|| (Router::new(router::all_routes()), Routers::new()))
}

fn percent_encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn check(router: &Router, path: &str) {
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PATCH,
        Method::PUT,
        Method::DELETE,
    ] {
        match router.find(&method, path) {
            Match::Found(route, params) => {
                assert_eq!(params.len(), route.path.matches('{').count(), "{}", route.path);
                assert!(router
                    .allow(path)
                    .is_some_and(|a| a.contains(route.method.as_str())));
            }
            Match::MethodNotAllowed(allow) => assert!(!allow.is_empty(), "405 without Allow"),
            Match::NotFound => {}
        }
    }
    if let Some(c) = router.canonical_case(path) {
        assert!(c.eq_ignore_ascii_case(router::normalize(path)), "{c} for {path}");
        // It names a route unless a parameter is not valid percent-encoding (then 404).
        if c.split('/').all(|seg| router::percent_decode(seg).is_some()) {
            assert!(router.allow(&c).is_some(), "{c} matches no route");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let (canonical, personas) = routers();
    check(canonical, path);
    if let Some(decoded) = router::percent_decode(path) {
        assert_eq!(
            router::percent_decode(&percent_encode(&decoded)).as_deref(),
            Some(decoded.as_str())
        );
    }
    let norm = router::normalize(path);
    for kind in [PersonaKind::Generic, PersonaKind::Ilo5, PersonaKind::Idrac9] {
        check(personas.of(kind), path);
        let ep = Endpoint::new("ep1", "0b4f4a3c-8a4e-4d0e-9d4b-1f2e3d4c5b6a", kind);
        let c = ep.to_canonical(norm);
        let _ = ep.in_scope(&c);
        let shown = ep.to_persona(&format!("{c}?$top=1#x"));
        assert!(shown.ends_with("?$top=1#x"), "{shown}");
    }
    if let Some((system, kind)) = parse_console_path(path) {
        assert_eq!(console_path(system, kind), path);
    }
});
