//! bmcd in-process against libvirt's test driver: service root, auth on every
//! route, privileges, sessions, accounts, lockout, power, errors, ETags, restart.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use redfin_tests::{test_node, Client, TempDir, TestBmc, ADMIN, ADMIN_PASSWORD};
use serde_json::json;

async fn bmc(tag: &str, domains: usize) -> (TestBmc, TempDir, Vec<redfin_tests::TestDomain>) {
    let dir = TempDir::new(tag);
    let (uri, doms) = test_node(dir.path(), domains);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    (bmc, dir, doms)
}

/// Fills a route template with ids that exist, so that a request reaches the
/// handler when it is allowed to.
fn concrete(path: &str, system: &str, account: &str, session: &str) -> String {
    let mut out = String::new();
    let mut prev = "";
    for seg in path.split('/').skip(1) {
        out.push('/');
        let value = match (prev, seg) {
            ("Systems" | "Chassis", "{id}") => system,
            ("Managers", "{id}") => "BMC",
            ("Accounts", "{id}") => account,
            ("Sessions", "{id}") => session,
            ("Roles", "{id}") => "ReadOnly",
            ("Registries", "{id}") | (_, "{file}") => "Base",
            ("JsonSchemas", "{id}") => "ComputerSystem",
            ("EthernetInterfaces", "{nic}") => "NIC1",
            ("Processors", "{cpu}") => "CPU1",
            ("Memory", "{dimm}") => "DIMM1",
            ("SimpleStorage" | "Storage", "{ctl}") => "1",
            ("Drives", "{drive}") => "vda",
            (_, s) => s,
        };
        out.push_str(value);
        prev = seg;
    }
    out
}

#[tokio::test]
async fn service_root_and_open_documents_need_no_login() {
    let (bmc, _dir, _) = bmc("root", 1).await;
    let c = bmc.client();
    let r = c.get("/redfish").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"v1": "/redfish/v1/"}));
    for path in ["/redfish/v1", "/redfish/v1/"] {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("odata-version"), Some("4.0"));
        assert!(r.header("etag").is_some_and(|e| e.starts_with("W/\"")));
        assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
        assert!(r.header("link").is_some_and(|l| l.contains("rel=describedby")));
        assert_eq!(
            r.json["Links"]["Sessions"]["@odata.id"],
            "/redfish/v1/SessionService/Sessions"
        );
        assert!(r.json["UUID"].as_str().is_some_and(|u| u.len() == 36));
    }
    let r = c.get("/redfish/v1/odata").await;
    assert_eq!(r.json["@odata.context"], "/redfish/v1/$metadata");
    let r = c.get("/redfish/v1/$metadata").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert!(std::str::from_utf8(&r.body)
        .expect("utf8")
        .contains("EntityContainer"));
    let r = c.raw(Method::HEAD, "/redfish/v1/", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    bmc.stop().await;
}

#[tokio::test]
async fn every_route_but_the_open_ones_refuses_anonymous_callers() {
    let (bmc, _dir, doms) = bmc("anon", 1).await;
    let admin = bmc.admin();
    let (_, session_uri) = admin.login(ADMIN, ADMIN_PASSWORD).await;
    let session = session_uri.rsplit('/').next().expect("id").to_owned();
    let anon = bmc.client();
    let mut checked = 0;
    for route in bmcd::router::all_routes() {
        let path = concrete(route.path, &doms[0].uuid, "1", &session);
        let body = matches!(route.method, Method::POST | Method::PATCH).then(|| Bytes::from_static(b"{}"));
        let r = anon
            .raw(route.method.clone(), &path, body, Some("application/json"))
            .await;
        if route.required == bmcd::privilege::Required::Open {
            assert_ne!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{} {path} is open",
                route.method
            );
        } else {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{} {path}", route.method);
            assert!(r.header("www-authenticate").is_some(), "{} {path}", route.method);
            assert!(
                r.message_id().ends_with("NoValidSession"),
                "{} {path}",
                route.method
            );
        }
        checked += 1;
    }
    assert!(checked > 40, "walked {checked} routes");
    // Unknown URIs do not reveal themselves to anonymous callers either.
    assert_eq!(
        anon.get("/redfish/v1/NoSuchThing").await.status,
        StatusCode::UNAUTHORIZED
    );
    // A bad token or bad Basic credentials are refused the same way.
    let r = anon.clone().token("not-a-token").get("/redfish/v1/Systems").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = anon
        .clone()
        .basic(ADMIN, "wrong")
        .get("/redfish/v1/Systems")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!String::from_utf8_lossy(&r.body).contains("wrong"));
    bmc.stop().await;
}

#[tokio::test]
async fn a_read_only_account_is_refused_every_action() {
    let (bmc, _dir, doms) = bmc("ro", 1).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "viewer", "Password": "viewer-pass-1", "RoleId": "ReadOnly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let viewer_id = r.json["Id"].as_str().expect("id").to_owned();
    let (_, admin_session) = admin.login(ADMIN, ADMIN_PASSWORD).await;
    let admin_session = admin_session.rsplit('/').next().expect("id").to_owned();
    let viewer = bmc.client().basic("viewer", "viewer-pass-1");
    let mut refused = 0;
    for route in bmcd::router::all_routes() {
        if route.method == Method::GET || route.required == bmcd::privilege::Required::Open {
            continue;
        }
        // Aim self-service routes at somebody else's resource: admin's account and session.
        let path = concrete(route.path, &doms[0].uuid, "1", &admin_session);
        let r = viewer
            .raw(
                route.method.clone(),
                &path,
                Some(Bytes::from_static(b"{\"ResetType\": \"ForceOff\"}")),
                Some("application/json"),
            )
            .await;
        let expected = if route.path.contains("Sessions/{id}") {
            // Another user's session is invisible to a non-manager.
            StatusCode::NOT_FOUND
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(r.status, expected, "{} {path}: {:?}", route.method, r.json);
        refused += 1;
    }
    assert!(refused >= 7, "{refused}");
    // The system is still running: nothing happened.
    let r = admin.get(&format!("/redfish/v1/Systems/{}", doms[0].uuid)).await;
    assert_eq!(r.json["PowerState"], "On");
    // But the viewer may change its own password.
    let r = viewer
        .patch(
            &format!("/redfish/v1/AccountService/Accounts/{viewer_id}"),
            json!({"Password": "viewer-pass-2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = viewer
        .patch(
            &format!("/redfish/v1/AccountService/Accounts/{viewer_id}"),
            json!({"RoleId": "Administrator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "old password no longer works");
    let viewer = bmc.client().basic("viewer", "viewer-pass-2");
    let r = viewer
        .patch(
            &format!("/redfish/v1/AccountService/Accounts/{viewer_id}"),
            json!({"RoleId": "Administrator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no self-promotion");
    bmc.stop().await;
}

#[tokio::test]
async fn sessions_log_in_list_and_log_out() {
    let (bmc, _dir, _) = bmc("sessions", 1).await;
    let c = bmc.client();
    let (token, location) = c.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(token.len(), 64);
    let authed = c.clone().token(&token);
    let r = authed.get(&location).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["UserName"], ADMIN);
    let r = authed.get("/redfish/v1/SessionService/Sessions").await;
    assert_eq!(r.json["Members@odata.count"], 1);
    // Login through the Members alias, as some clients do.
    let r = c
        .post(
            "/redfish/v1/SessionService/Sessions/Members",
            json!({"UserName": ADMIN, "Password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.header("location"), Some(location.as_str()));
    // Bad logins: wrong password, missing field, unknown field.
    let r = c
        .post(
            "/redfish/v1/SessionService/Sessions",
            json!({"UserName": ADMIN, "Password": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("location").is_none());
    let r = c
        .post("/redfish/v1/SessionService/Sessions", json!({"UserName": ADMIN}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message_id().ends_with("PropertyMissing"));
    let r = c
        .post(
            "/redfish/v1/SessionService/Sessions",
            json!({"UserName": ADMIN, "Password": ADMIN_PASSWORD, "Bogus": 1}),
        )
        .await;
    assert!(r.message_id().ends_with("PropertyUnknown"));
    // Logout ends the token.
    assert_eq!(authed.delete(&location).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        authed.get("/redfish/v1/Systems").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Session timeout is configurable within bounds.
    let admin = bmc.admin();
    let r = admin
        .patch("/redfish/v1/SessionService", json!({"SessionTimeout": 5}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message_id().ends_with("PropertyValueOutOfRange"));
    let r = admin
        .patch("/redfish/v1/SessionService", json!({"SessionTimeout": 600}))
        .await;
    assert_eq!(r.json["SessionTimeout"], 600);
    bmc.stop().await;
}

#[tokio::test]
async fn accounts_are_created_changed_and_removed() {
    let (bmc, _dir, _) = bmc("accounts", 1).await;
    let admin = bmc.admin();
    let accounts = "/redfish/v1/AccountService/Accounts";
    let r = admin
        .post(
            accounts,
            json!({"UserName": "op", "Password": "short", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "password policy");
    let r = admin
        .post(
            accounts,
            json!({"UserName": "op", "Password": "op-pass-123", "RoleId": "Wizard"}),
        )
        .await;
    assert!(r.message_id().ends_with("PropertyValueNotInList"));
    let r = admin
        .post(accounts, json!({"UserName": "op", "Password": "op-pass-123"}))
        .await;
    assert!(r.message_id().ends_with("PropertyMissing"));
    let r = admin
        .post(
            accounts,
            json!({"UserName": "op", "Password": "op-pass-123", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let uri = r.header("location").expect("location").to_owned();
    assert_eq!(r.json["Password"], serde_json::Value::Null);
    assert!(!String::from_utf8_lossy(&r.body).contains("op-pass-123"));
    let r = admin
        .post(
            accounts,
            json!({"UserName": "op", "Password": "op-pass-123", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.message_id().ends_with("ResourceAlreadyExists"));
    // The operator may power systems but not manage users.
    let op = bmc.client().basic("op", "op-pass-123");
    assert_eq!(op.get("/redfish/v1/Systems").await.status, StatusCode::OK);
    let r = op
        .post(
            accounts,
            json!({"UserName": "x", "Password": "xxxxxxxx1", "RoleId": "ReadOnly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message_id().ends_with("InsufficientPrivilege"));
    // A new password ends the account's other sessions; the session that
    // changed it stays.
    let (t1, _) = bmc.client().login("op", "op-pass-123").await;
    let (t2, _) = bmc.client().login("op", "op-pass-123").await;
    let s1 = bmc.client().token(&t1);
    let r = s1.patch(&uri, json!({"Password": "op-pass-456"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(s1.get("/redfish/v1/Systems").await.status, StatusCode::OK);
    assert_eq!(
        bmc.client().token(&t2).get("/redfish/v1/Systems").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Disabling the account ends every session.
    admin.patch(&uri, json!({"Enabled": false})).await;
    assert_eq!(
        s1.get("/redfish/v1/Systems").await.status,
        StatusCode::UNAUTHORIZED
    );
    admin.patch(&uri, json!({"Enabled": true})).await;
    let op = bmc.client().basic("op", "op-pass-456");
    // Role change, then removal.
    let r = admin.patch(&uri, json!({"RoleId": "ReadOnly"})).await;
    assert_eq!(r.json["RoleId"], "ReadOnly");
    let r = admin.patch(&uri, json!({"BogusProp": "foo"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json["error"]["@Message.ExtendedInfo"][0]["MessageArgs"][0],
        "BogusProp"
    );
    assert_eq!(admin.delete(&uri).await.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.get(&uri).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        op.get("/redfish/v1/Systems").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The last administrator stays.
    let r = admin.delete(&format!("{accounts}/1")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let roles = admin.get("/redfish/v1/AccountService/Roles/Operator").await;
    assert_eq!(
        roles.json["AssignedPrivileges"],
        json!(["Login", "ConfigureSelf", "ConfigureComponents"])
    );
    bmc.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_an_admin_unlocks_it() {
    let (bmc, _dir, _) = bmc("lockout", 1).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "victim", "Password": "victim-pass", "RoleId": "Operator"}),
        )
        .await;
    let uri = r.header("location").expect("location").to_owned();
    let threshold = admin.get("/redfish/v1/AccountService").await.json["AccountLockoutThreshold"]
        .as_u64()
        .expect("threshold");
    let bad = bmc.client().basic("victim", "guess");
    for _ in 0..threshold {
        assert_eq!(
            bad.get("/redfish/v1/Systems").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let good = bmc.client().basic("victim", "victim-pass");
    assert_eq!(
        good.get("/redfish/v1/Systems").await.status,
        StatusCode::UNAUTHORIZED,
        "locked"
    );
    assert_eq!(admin.get(&uri).await.json["Locked"], true);
    let r = admin.patch(&uri, json!({"Locked": false})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(good.get("/redfish/v1/Systems").await.status, StatusCode::OK);
    bmc.stop().await;
}

#[tokio::test]
async fn resets_move_the_power_state_the_way_redfish_says() {
    let (bmc, _dir, doms) = bmc("power", 2).await;
    let admin = bmc.admin();
    let running = &doms[0];
    let off = &doms[1];
    assert!(running.running && !off.running);
    let sys = |d: &redfin_tests::TestDomain| format!("/redfish/v1/Systems/{}", d.uuid);
    let reset = |d: &redfin_tests::TestDomain| format!("{}/Actions/ComputerSystem.Reset", sys(d));
    let power = |r: redfin_tests::Resp| r.json["PowerState"].as_str().unwrap_or("").to_owned();
    assert_eq!(power(admin.get(&sys(running)).await), "On");
    assert_eq!(power(admin.get(&sys(off)).await), "Off");

    // (system, reset type, expected status, power state after)
    let steps = [
        (off, "GracefulRestart", StatusCode::CONFLICT, "Off"),
        (off, "Nmi", StatusCode::CONFLICT, "Off"),
        (off, "ForceOff", StatusCode::NO_CONTENT, "Off"),
        (off, "On", StatusCode::NO_CONTENT, "On"),
        (off, "On", StatusCode::NO_CONTENT, "On"),
        (off, "ForceOff", StatusCode::NO_CONTENT, "Off"),
        (off, "ForceRestart", StatusCode::NO_CONTENT, "On"),
        (off, "PowerCycle", StatusCode::NO_CONTENT, "On"),
        (running, "GracefulRestart", StatusCode::NO_CONTENT, "On"),
        (running, "ForceRestart", StatusCode::NO_CONTENT, "On"),
        (running, "ForceOn", StatusCode::NO_CONTENT, "On"),
        (running, "GracefulShutdown", StatusCode::NO_CONTENT, "Off"),
        (running, "PushPowerButton", StatusCode::NO_CONTENT, "On"),
    ];
    for (d, rt, status, after) in steps {
        let r = admin.post(&reset(d), json!({"ResetType": rt})).await;
        assert_eq!(r.status, status, "{rt} on {}: {:?}", d.name, r.json);
        if status == StatusCode::CONFLICT {
            assert!(r.json["error"]["@Message.ExtendedInfo"][0]["Resolution"]
                .as_str()
                .is_some_and(|s| s.contains(rt)));
        }
        assert_eq!(power(admin.get(&sys(d)).await), after, "after {rt} on {}", d.name);
    }
    // Bad requests.
    let r = admin.post(&reset(running), json!({"ResetType": "Explode"})).await;
    assert!(r.message_id().ends_with("ActionParameterValueNotInList"));
    let r = admin.post(&reset(running), json!({})).await;
    assert!(r.message_id().ends_with("ActionParameterMissing"));
    let r = admin
        .post(&reset(running), json!({"ResetType": "On", "Force": true}))
        .await;
    assert!(r.message_id().ends_with("ActionParameterUnknown"));
    let r = admin.post(&reset(running), json!({"ResetType": 7})).await;
    assert!(r.message_id().ends_with("ActionParameterValueTypeError"));
    let r = admin
        .post(
            "/redfish/v1/Systems/00000000-0000-4000-8000-0000000000ff/Actions/ComputerSystem.Reset",
            json!({"ResetType": "On"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let info = admin.get(&format!("{}/ResetActionInfo", sys(running))).await;
    assert_eq!(
        info.json["Parameters"][0]["AllowableValues"]
            .as_array()
            .map(Vec::len),
        Some(9)
    );
    bmc.stop().await;
}

#[tokio::test]
async fn systems_show_what_the_domain_xml_says() {
    let (bmc, _dir, doms) = bmc("inventory", 3).await;
    let admin = bmc.admin();
    let r = admin.get("/redfish/v1/Systems").await;
    assert_eq!(r.json["Members@odata.count"], 3);
    let uri = format!("/redfish/v1/Systems/{}", doms[1].uuid);
    let s = admin.get(&uri).await.json;
    assert_eq!(s["Name"], "vm-2");
    assert_eq!(s["UUID"], doms[1].uuid);
    assert_eq!(s["ProcessorSummary"]["LogicalProcessorCount"], 2);
    assert_eq!(s["MemorySummary"]["TotalSystemMemoryGiB"], 0.5);
    let nic = admin.get(&format!("{uri}/EthernetInterfaces/NIC1")).await.json;
    assert_eq!(nic["MACAddress"], "52:54:00:00:00:02");
    let storage = admin.get(&format!("{uri}/Storage/1")).await.json;
    assert_eq!(storage["Drives@odata.count"], 1, "the CD drive is not a Drive");
    // The drive's capacity, from libvirt's block info (the test driver
    // answers 1,099,506,450,432 bytes for any disk with a source).
    let drive = admin.get(&format!("{uri}/Storage/1/Drives/vda")).await;
    assert_eq!(drive.status, StatusCode::OK);
    assert_eq!(
        drive.json["CapacityBytes"], 1_099_506_450_432_u64,
        "{}",
        drive.json
    );
    let simple = admin.get(&format!("{uri}/SimpleStorage/1")).await.json;
    assert_eq!(
        simple["Devices"][0]["CapacityBytes"], 1_099_506_450_432_u64,
        "{simple}"
    );
    assert_eq!(
        admin.get(&format!("{uri}/Storage/1/Drives/sda")).await.status,
        StatusCode::NOT_FOUND
    );
    // A name lookup is redirected to the UUID URI.
    let r = admin.get("/redfish/v1/Systems/vm-2").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), Some(uri.as_str()));
    let chassis = admin.get(&format!("/redfish/v1/Chassis/{}", doms[1].uuid)).await;
    assert_eq!(chassis.json["Links"]["ComputerSystems"][0]["@odata.id"], uri);
    let mgr = admin.get("/redfish/v1/Managers/BMC").await.json;
    assert_eq!(
        mgr["Links"]["ManagerForServers"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(mgr["DateTime"].as_str().is_some_and(|d| d.ends_with("+00:00")));
    bmc.stop().await;
}

#[tokio::test]
async fn errors_are_redfish_errors_with_the_right_status() {
    let (bmc, _dir, doms) = bmc("errors", 1).await;
    let admin = bmc.admin();
    let r = admin.get("/redfish/v1/Nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json["error"]["code"]
        .as_str()
        .is_some_and(|c| c.starts_with("Base.")));
    let r = admin.delete("/redfish/v1").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = admin
        .raw(
            Method::from_bytes(b"FAKEMETHOD").expect("m"),
            "/redfish/v1",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let reset = format!(
        "/redfish/v1/Systems/{}/Actions/ComputerSystem.Reset",
        doms[0].uuid
    );
    let r = admin
        .raw(
            Method::POST,
            &reset,
            Some(Bytes::from_static(b"{not json")),
            Some("application/json"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message_id().ends_with("MalformedJSON"));
    let r = admin
        .raw(
            Method::POST,
            &reset,
            Some(Bytes::from_static(b"ResetType=On")),
            Some("text/plain"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = Bytes::from(vec![b' '; 2 << 20]);
    let r = admin
        .raw(Method::POST, &reset, Some(big), Some("application/json"))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = admin.get("/redfish/v1/Systems?$select=Name").await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        admin.get("/redfish/v1/Systems?ignored=1").await.status,
        StatusCode::OK
    );
    let r = admin
        .clone()
        .header("OData-Version", "4.1")
        .get("/redfish/v1/Systems")
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = admin.get("/redfish/v1/Systems/not-a-system").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message_id().ends_with("ResourceNotFound"));
    bmc.stop().await;
}

#[tokio::test]
async fn expand_inlines_one_level_of_references() {
    let (bmc, _dir, doms) = bmc("expand", 3).await;
    let admin = bmc.admin();
    let r = admin.get("/redfish/v1/Systems?$expand=.").await;
    assert_eq!(r.status, StatusCode::OK);
    let members = r.json["Members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3);
    assert!(members
        .iter()
        .all(|m| m["PowerState"].is_string() && m["Links"]["Chassis"][0].is_object()));
    // `.` leaves Links alone; `~` expands only Links; `*` both.
    let sys = format!("/redfish/v1/Systems/{}", doms[0].uuid);
    let dot = admin.get(&format!("{sys}?$expand=.")).await.json;
    assert!(dot["Processors"]["Members"].is_array());
    assert_eq!(dot["Links"]["Chassis"][0].as_object().map(|o| o.len()), Some(1));
    let tilde = admin.get(&format!("{sys}?$expand=~")).await.json;
    assert!(tilde["Links"]["Chassis"][0]["ChassisType"].is_string());
    assert_eq!(tilde["Processors"].as_object().map(|o| o.len()), Some(1));
    let star = admin.get(&format!("{sys}?$expand=*($levels=1)")).await.json;
    assert!(star["Links"]["Chassis"][0]["ChassisType"].is_string() && star["Memory"]["Members"].is_array());
    // With paging, the page is expanded.
    let page = admin.get("/redfish/v1/Systems?$expand=.&$top=1").await.json;
    assert_eq!(page["Members"].as_array().map(Vec::len), Some(1));
    assert!(page["Members"][0]["UUID"].is_string());
    // Only one level, and only known forms.
    assert_eq!(
        admin.get("/redfish/v1/Systems?$expand=*($levels=2)").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        admin.get("/redfish/v1/Systems?$expand=all").await.status,
        StatusCode::BAD_REQUEST
    );
    // Anonymous callers of the open service root get references only.
    let anon = bmc.client().get("/redfish/v1?$expand=*").await.json;
    assert_eq!(anon["Systems"].as_object().map(|o| o.len()), Some(1), "{anon}");
    let authed = admin.get("/redfish/v1?$expand=*").await.json;
    assert!(authed["Systems"]["Members"].is_array());
    assert!(authed["Links"]["Sessions"]["Members"].is_array());
    // What the caller may not read stays a reference.
    admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "ro", "Password": "ro-pass-123", "RoleId": "ReadOnly"}),
        )
        .await;
    let ro = bmc.client().basic("ro", "ro-pass-123");
    let accounts = ro.get("/redfish/v1/AccountService/Accounts?$expand=.").await.json;
    assert_eq!(
        accounts["Members@odata.count"], 1,
        "a ReadOnly user lists only itself"
    );
    bmc.stop().await;
}

#[tokio::test]
async fn etags_guard_writes_and_save_reads() {
    let (bmc, _dir, _) = bmc("etag", 1).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "etag", "Password": "etag-pass-1", "RoleId": "ReadOnly"}),
        )
        .await;
    let uri = r.header("location").expect("location").to_owned();
    let r = admin.get(&uri).await;
    let etag = r.header("etag").expect("etag").to_owned();
    // The body carries the same ETag.
    assert_eq!(r.json["@odata.etag"], etag.as_str());
    let r = admin.clone().header("If-None-Match", &etag).get(&uri).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = admin
        .clone()
        .header("If-Match", "\"rpv-never-issued-etag\"")
        .patch(&uri, json!({"RoleId": "Operator"}))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = admin
        .clone()
        .header("If-Match", &etag)
        .patch(&uri, json!({"RoleId": "Operator"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = admin
        .clone()
        .header("If-Match", &etag)
        .patch(&uri, json!({"RoleId": "ReadOnly"}))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "stale ETag");
    // Of concurrent writers holding the same ETag, exactly one wins.
    let etag = admin.get(&uri).await.header("etag").expect("etag").to_owned();
    let mut tasks = Vec::new();
    for role in ["ReadOnly", "Administrator", "ReadOnly", "Administrator"] {
        let c = admin.clone().header("If-Match", &etag);
        let uri = uri.clone();
        tasks.push(tokio::spawn(async move {
            c.patch(&uri, json!({"RoleId": role})).await.status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            StatusCode::OK => ok += 1,
            StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1);
    // Authentication comes before the ETag check.
    let r = bmc.client().header("If-None-Match", &etag).get(&uri).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    bmc.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_accounts_sessions_and_identity() {
    let dir = TempDir::new("restart");
    let (uri, _) = test_node(dir.path(), 1);
    let state = dir.path().join("state");
    let bmc = TestBmc::start(&state, &uri).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "keeper", "Password": "keeper-pass", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (token, session) = bmc.client().login("keeper", "keeper-pass").await;
    let uuid = bmc.client().get("/redfish/v1").await.json["UUID"].clone();
    bmc.stop().await;

    // Same state directory; the first-admin password from config is not reapplied.
    let mut config = TestBmc::config(&state, &uri);
    config.admin_password = Some("ignored-on-restart".into());
    let bmc = TestBmc::start_with(config).await;
    assert_eq!(bmc.client().get("/redfish/v1").await.json["UUID"], uuid);
    let keeper = bmc.client().token(&token);
    let r = keeper.get(&session).await;
    assert_eq!(r.status, StatusCode::OK, "session survived: {:?}", r.json);
    assert_eq!(r.json["UserName"], "keeper");
    assert_eq!(
        bmc.admin().get("/redfish/v1/Systems").await.status,
        StatusCode::OK
    );
    assert!(bmc.running().generated_admin_password.is_none());
    bmc.stop().await;
}

#[tokio::test]
async fn a_generated_admin_password_is_returned_once_and_works() {
    let dir = TempDir::new("genpw");
    let (uri, _) = test_node(dir.path(), 1);
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.admin_password = None;
    let bmc = TestBmc::start_with(config.clone()).await;
    let pw = bmc.running().generated_admin_password.clone().expect("generated");
    assert!(pw.len() >= 16);
    let c = bmc.client().basic(ADMIN, &pw);
    assert_eq!(c.get("/redfish/v1/Systems").await.status, StatusCode::OK);
    bmc.stop().await;
    let bmc = TestBmc::start_with(config).await;
    assert!(bmc.running().generated_admin_password.is_none());
    assert_eq!(
        bmc.client()
            .basic(ADMIN, &pw)
            .get("/redfish/v1/Systems")
            .await
            .status,
        StatusCode::OK
    );
    bmc.stop().await;
}

#[tokio::test]
async fn the_plain_http_listener_only_redirects() {
    let dir = TempDir::new("redirect");
    let (uri, _) = test_node(dir.path(), 1);
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.http_redirect = Some("127.0.0.1:0".parse().expect("addr"));
    let bmc = TestBmc::start_with(config).await;
    let http = bmc.running().http_redirect.expect("listener");
    let mut tcp = tokio::net::TcpStream::connect(http).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /redfish/v1/Systems HTTP/1.1\r\nHost: bmc.lab:80\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await.expect("read");
    assert!(resp.starts_with("HTTP/1.1 308"), "{resp}");
    let location = format!("location: https://bmc.lab:{}/redfish/v1/Systems", bmc.addr.port());
    assert!(
        resp.to_ascii_lowercase().contains(&location.to_ascii_lowercase()),
        "{resp}"
    );
    bmc.stop().await;
}

#[tokio::test]
async fn metadata_and_odata_types_exist_in_the_dmtf_schemas() {
    let dir = redfin_tests::schema_dir();
    assert!(
        dir.is_dir(),
        "DMTF schema folder {} missing (set REDFIN_SCHEMA_DIR)",
        dir.display()
    );
    for s in bmcd::schemas::ALL {
        let file = dir.join(s.csdl_file());
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ns = if s.version.is_empty() {
            s.family.to_owned()
        } else {
            format!("{}.{}", s.family, s.version)
        };
        assert!(
            text.contains(&format!("Namespace=\"{ns}\"")),
            "{} does not define {ns}",
            file.display()
        );
    }
    for family in bmcd::schemas::SUPPORTING {
        assert!(dir.join(format!("{family}_v1.xml")).is_file(), "{family}");
    }
    let _ = Client::new("127.0.0.1:1".parse().expect("addr"));
}
