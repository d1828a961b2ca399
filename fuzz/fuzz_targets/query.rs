//! Query options: `$top`/`$skip` (and the page they cut, with its next link), `$expand`, the
//! check of `$` options against those a route accepts, and the two `$filter` grammars (log
//! entries, SSE streams).
#![no_main]

use bmcd::fuzzing;
use libfuzzer_sys::fuzz_target;

const LOG_PROPS: [&str; 4] = ["Severity", "MessageId", "EntryType", "Created"];

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((top, skip)) = fuzzing::paging(q) {
        for total in [0usize, 1, 7] {
            let body = fuzzing::page("/redfish/v1/Systems", q, total).expect("a parsed $top/$skip pages");
            let members = body["Members"].as_array().map_or(0, Vec::len);
            assert_eq!(body["Members@odata.count"], total, "the count stays the total");
            let first = skip.unwrap_or(0).min(total);
            assert_eq!(members, top.unwrap_or(total).min(total - first));
            if let Some(next) = body["Members@odata.nextLink"].as_str() {
                let (_, next_q) = next.split_once('?').expect("a next link has a query");
                let (t, s) = fuzzing::paging(next_q).expect("a next link parses");
                assert_eq!((t, s), (top, Some(first + members)), "{next}");
            }
        }
    }
    if let Ok(Some(kind)) = fuzzing::expand(q) {
        assert!(matches!(kind, '*' | '.' | '~'));
    }
    // Every `$` option the route declares is accepted; the others are refused, never ignored.
    let names: Vec<&str> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
        .collect();
    assert!(fuzzing::check_query(q, &names, false).is_ok());
    if let Err(e) = fuzzing::check_query(q, &["$filter"], true) {
        assert!(e.status.is_client_error() || e.status.is_server_error());
    }
    for raw in std::iter::once(q).chain(q.split('&').filter_map(|p| p.strip_prefix("$filter="))) {
        if let Ok(clauses) = fuzzing::log_filter(raw) {
            assert!(!clauses.is_empty());
            for (prop, op, _) in &clauses {
                assert!(LOG_PROPS.contains(&prop.as_str()), "{prop}");
                assert!(
                    matches!(op.as_str(), "eq" | "ne" | "gt" | "ge" | "lt" | "le"),
                    "{op}"
                );
            }
        }
        let _ = fuzzing::sse_filter(raw);
    }
});
