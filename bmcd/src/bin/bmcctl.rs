//! `bmcctl`: the common admin tasks against a bmcd (or any Redfish service)
//! over HTTPS: systems and power, boot override, virtual media, accounts,
//! per-VM BMC endpoints, libvirt hosts, projects, and raw GET/POST/PATCH/DELETE.
//!
//! A separate binary so that bmcd stays within its size budget. Blocking I/O
//! (one request at a time, `Connection: close`) with rustls; no async runtime.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use serde_json::{json, Value};

const USAGE: &str = "\
usage: bmcctl [OPTIONS] COMMAND [ARGS]

options (or environment):
  --url URL            https://HOST:PORT of the BMC (BMCCTL_URL; default https://127.0.0.1:8443)
  -u, --user USER      account (BMCCTL_USER; default admin)
  -p, --password PW    password (BMCCTL_PASSWORD)
  --cacert FILE        trust this PEM certificate (BMCCTL_CACERT)
  -k, --insecure       do not verify the BMC's certificate (self-signed lab BMCs)
  --json               print the Redfish JSON instead of tables

commands:
  systems                                   systems with their power state
  power SYSTEM on|off|shutdown|restart|reboot|cycle|nmi
  boot SYSTEM cd|pxe|hdd|usb|bios|none [--once]
  media list SYSTEM
  media insert SYSTEM URL [--slot SLOT]
  media eject SYSTEM [--slot SLOT]
  accounts list
  accounts add USER PASSWORD [ROLE] [--project PROJECT]
                                            ROLE: Administrator, Operator or ReadOnly (default)
  accounts delete USER
  endpoints list
  endpoints add ID SYSTEM PERSONA ADDRESS [--user USER --password PW]
  endpoints delete ID
  hosts                                     libvirt hosts: state, systems, free memory, labels
  projects list
  projects add ID [--max-systems N] [--max-vcpus N] [--max-memory-mib N] [--max-disk-gib N]
  projects delete ID
  get PATH | delete PATH | post PATH JSON | patch PATH JSON

SYSTEM is a system's Id (its UUID) or its name.";

#[derive(Debug)]
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string())
    }
}

type Outcome<T> = Result<T, Failure>;

fn fail<T>(msg: impl Into<String>) -> Outcome<T> {
    Err(Failure(msg.into()))
}

struct Client {
    host: String,
    port: u16,
    authorization: String,
    tls: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

/// A response: status and body (JSON when it parses, else a string).
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body of a 2xx answer, or the Redfish error's message as a failure.
    fn ok(self) -> Outcome<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let info = &self.body["error"]["@Message.ExtendedInfo"][0];
        let message = info["Message"]
            .as_str()
            .or(self.body["error"]["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| self.body.to_string());
        let resolution = info["Resolution"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        fail(format!("HTTP {}: {message}{resolution}", self.status))
    }
}

fn dechunk(mut body: &[u8]) -> Outcome<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| Failure("bad chunked body".into()))?;
        let size_text = std::str::from_utf8(&body[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return fail("chunked body cut short");
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

impl Client {
    fn new(opts: &Options) -> Outcome<Client> {
        let rest = opts
            .url
            .strip_prefix("https://")
            .ok_or_else(|| Failure(format!("--url '{}' must start with https://", opts.url)))?;
        let authority = rest.split('/').next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                Ok(port) => (h.to_owned(), port),
                Err(_) => (authority.to_owned(), 443),
            },
            _ => (authority.to_owned(), 443),
        };
        let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let server_name = ServerName::try_from(bare_host.clone())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let tls = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(bmcd::outbound::AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let Some(ca) = &opts.cacert else {
                return fail("give --cacert FILE (the BMC's certificate or its CA) or --insecure");
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| Failure(format!("{}: {e}", ca.display())))?
            {
                roots.add(cert.map_err(|e| Failure(format!("{}: {e}", ca.display())))?)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let password = opts
            .password
            .clone()
            .ok_or_else(|| Failure("give the password with -p/--password or BMCCTL_PASSWORD".into()))?;
        Ok(Client {
            host: bare_host,
            port,
            authorization: format!("Basic {}", B64.encode(format!("{}:{password}", opts.user))),
            tls: Arc::new(tls),
            server_name,
        })
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Outcome<Response> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .map_err(|e| Failure(format!("cannot connect to {}:{}: {e}", self.host, self.port)))?;
        tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(60)))?;
        let conn = rustls::ClientConnection::new(Arc::clone(&self.tls), self.server_name.clone())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\nAccept: application/json\r\n\
             User-Agent: bmcctl/{}\r\nConnection: close\r\n",
            self.authorization,
            bmcd::VERSION
        );
        if body.is_some() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        } else if method != "GET" && method != "DELETE" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes())
            .map_err(|e| Failure(format!("TLS with {host}: {e}")))?;
        tls.write_all(payload.as_bytes())?;
        tls.flush()?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // A peer that closes without close_notify: the answer is complete
            // when its length says so (checked below).
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return fail(format!("reading the answer from {host}: {e}")),
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| Failure("no HTTP answer".into()))?;
        let head = std::str::from_utf8(&raw[..split])?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Failure("bad HTTP status line".into()))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
        if chunked {
            body = dechunk(&body)?;
        } else if let Some(len) = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            if body.len() < len {
                return fail("the answer was cut short");
            }
            body.truncate(len);
        }
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn get(&self, path: &str) -> Outcome<Value> {
        self.request("GET", path, None)?.ok()
    }

    fn members(&self, path: &str) -> Outcome<Vec<Value>> {
        let c = self.get(path)?;
        let mut out = Vec::new();
        for m in c["Members"].as_array().cloned().unwrap_or_default() {
            if let Some(uri) = m["@odata.id"].as_str() {
                out.push(self.get(uri)?);
            }
        }
        Ok(out)
    }

    /// A system's URI from its Id or name.
    fn system(&self, name: &str) -> Outcome<String> {
        for s in self.members("/redfish/v1/Systems")? {
            if s["Id"].as_str() == Some(name) || s["Name"].as_str() == Some(name) {
                if let Some(uri) = s["@odata.id"].as_str() {
                    return Ok(uri.to_owned());
                }
            }
        }
        fail(format!("no system with Id or name '{name}'"))
    }
}

struct Options {
    url: String,
    user: String,
    password: Option<String>,
    cacert: Option<PathBuf>,
    insecure: bool,
    json: bool,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn table(rows: Vec<Vec<String>>) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths[i]))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Takes `--name VALUE` out of `args`.
fn take_option(args: &mut Vec<String>, name: &str) -> Outcome<Option<String>> {
    match args.iter().position(|a| a == name) {
        Some(i) if i + 1 < args.len() => {
            let v = args.remove(i + 1);
            args.remove(i);
            Ok(Some(v))
        }
        Some(_) => fail(format!("{name} needs a value")),
        None => Ok(None),
    }
}

fn take_flag(args: &mut Vec<String>, name: &str) -> bool {
    match args.iter().position(|a| a == name) {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    }
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> Outcome<&'a str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| Failure(format!("missing {what}\n\n{USAGE}")))
}

fn body_arg(args: &[String], i: usize) -> Outcome<Value> {
    let text = arg(args, i, "JSON body")?;
    serde_json::from_str(text).map_err(|e| Failure(format!("the JSON body does not parse: {e}")))
}

fn cd_slot(c: &Client, system: &str, slot: Option<String>) -> Outcome<String> {
    if let Some(slot) = slot {
        return Ok(format!("{system}/VirtualMedia/{slot}"));
    }
    let slots = c.members(&format!("{system}/VirtualMedia"))?;
    let cd = slots
        .iter()
        .find(|m| {
            m["MediaTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "CD" || x == "DVD"))
        })
        .or(slots.first());
    match cd.and_then(|m| m["@odata.id"].as_str()) {
        Some(uri) => Ok(uri.to_owned()),
        None => fail("the system has no virtual media slot"),
    }
}

fn report(r: Response, done: &str) -> Outcome<()> {
    let location = r.header("location").map(str::to_owned);
    let status = r.status;
    r.ok()?;
    match (status, location) {
        (202, Some(task)) => println!("{done} (task {task})"),
        _ => println!("{done}"),
    }
    Ok(())
}

fn run(opts: &Options, mut args: Vec<String>) -> Outcome<()> {
    let command = args.first().cloned().unwrap_or_default();
    let c = Client::new(opts)?;
    match command.as_str() {
        "systems" => {
            let systems = c.members("/redfish/v1/Systems")?;
            if opts.json {
                print_json(&Value::Array(systems));
                return Ok(());
            }
            let mut rows = vec![vec![
                "ID".into(),
                "NAME".into(),
                "POWER".into(),
                "BOOT OVERRIDE".into(),
            ]];
            for s in &systems {
                let boot = &s["Boot"];
                rows.push(vec![
                    self::s(&s["Id"]),
                    self::s(&s["Name"]),
                    self::s(&s["PowerState"]),
                    format!(
                        "{} ({})",
                        self::s(&boot["BootSourceOverrideTarget"]),
                        self::s(&boot["BootSourceOverrideEnabled"])
                    ),
                ]);
            }
            table(rows);
        }
        "power" => {
            let system = c.system(arg(&args, 1, "SYSTEM")?)?;
            let reset = match arg(&args, 2, "power action")? {
                "on" => "On",
                "off" => "ForceOff",
                "shutdown" => "GracefulShutdown",
                "restart" => "ForceRestart",
                "reboot" => "GracefulRestart",
                "cycle" => "PowerCycle",
                "nmi" => "Nmi",
                other => return fail(format!("unknown power action '{other}'")),
            };
            let r = c.request(
                "POST",
                &format!("{system}/Actions/ComputerSystem.Reset"),
                Some(&json!({ "ResetType": reset })),
            )?;
            report(r, &format!("{reset} sent to {system}"))?;
        }
        "boot" => {
            let once = take_flag(&mut args, "--once");
            let system = c.system(arg(&args, 1, "SYSTEM")?)?;
            let target = match arg(&args, 2, "boot target")? {
                "cd" => "Cd",
                "pxe" => "Pxe",
                "hdd" => "Hdd",
                "usb" => "Usb",
                "bios" => "BiosSetup",
                "none" => "None",
                other => return fail(format!("unknown boot target '{other}'")),
            };
            let enabled = match (target, once) {
                ("None", _) => "Disabled",
                (_, true) => "Once",
                (_, false) => "Continuous",
            };
            let r = c.request(
                "PATCH",
                &system,
                Some(&json!({"Boot": {"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": enabled}})),
            )?;
            report(r, &format!("{system} boots {target} ({enabled})"))?;
        }
        "media" => {
            let slot = take_option(&mut args, "--slot")?;
            let sub = arg(&args, 1, "media list|insert|eject")?.to_owned();
            let system = c.system(arg(&args, 2, "SYSTEM")?)?;
            match sub.as_str() {
                "list" => {
                    let slots = c.members(&format!("{system}/VirtualMedia"))?;
                    if opts.json {
                        print_json(&Value::Array(slots));
                        return Ok(());
                    }
                    let mut rows = vec![vec![
                        "SLOT".into(),
                        "TYPES".into(),
                        "INSERTED".into(),
                        "IMAGE".into(),
                    ]];
                    for m in &slots {
                        rows.push(vec![
                            s(&m["Id"]),
                            s(&m["MediaTypes"]),
                            s(&m["Inserted"]),
                            s(&m["Image"]),
                        ]);
                    }
                    table(rows);
                }
                "insert" => {
                    let url = arg(&args, 3, "image URL")?;
                    let slot = cd_slot(&c, &system, slot)?;
                    let r = c.request(
                        "POST",
                        &format!("{slot}/Actions/VirtualMedia.InsertMedia"),
                        Some(&json!({"Image": url, "Inserted": true})),
                    )?;
                    report(r, &format!("{url} inserted in {slot}"))?;
                }
                "eject" => {
                    let slot = cd_slot(&c, &system, slot)?;
                    let r = c.request(
                        "POST",
                        &format!("{slot}/Actions/VirtualMedia.EjectMedia"),
                        Some(&json!({})),
                    )?;
                    report(r, &format!("{slot} ejected"))?;
                }
                other => return fail(format!("unknown media command '{other}'")),
            }
        }
        "accounts" => {
            const ACCOUNTS: &str = "/redfish/v1/AccountService/Accounts";
            let project = take_option(&mut args, "--project")?;
            match arg(&args, 1, "accounts list|add|delete")? {
                "list" => {
                    let accounts = c.members(ACCOUNTS)?;
                    if opts.json {
                        print_json(&Value::Array(accounts));
                        return Ok(());
                    }
                    let mut rows = vec![vec![
                        "ID".into(),
                        "USER".into(),
                        "ROLE".into(),
                        "ENABLED".into(),
                        "LOCKED".into(),
                    ]];
                    for a in &accounts {
                        rows.push(vec![
                            s(&a["Id"]),
                            s(&a["UserName"]),
                            s(&a["RoleId"]),
                            s(&a["Enabled"]),
                            s(&a["Locked"]),
                        ]);
                    }
                    table(rows);
                }
                "add" => {
                    let user = arg(&args, 2, "USER")?;
                    let password = arg(&args, 3, "PASSWORD")?;
                    let role = args.get(4).map(String::as_str).unwrap_or("ReadOnly");
                    let mut body = json!({"UserName": user, "Password": password, "RoleId": role});
                    if let Some(p) = &project {
                        body["Oem"] = json!({"Redfin": {"Project": p}});
                    }
                    let r = c.request("POST", ACCOUNTS, Some(&body))?;
                    let location = r.header("location").unwrap_or("").to_owned();
                    r.ok()?;
                    println!("account {user} ({role}) created at {location}");
                }
                "delete" => {
                    let user = arg(&args, 2, "USER")?;
                    let account = c
                        .members(ACCOUNTS)?
                        .into_iter()
                        .find(|a| a["UserName"].as_str() == Some(user))
                        .ok_or_else(|| Failure(format!("no account '{user}'")))?;
                    let uri = s(&account["@odata.id"]);
                    c.request("DELETE", &uri, None)?.ok()?;
                    println!("account {user} deleted");
                }
                other => return fail(format!("unknown accounts command '{other}'")),
            }
        }
        "endpoints" => {
            const ENDPOINTS: &str = "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints";
            let user = take_option(&mut args, "--user")?;
            let password = take_option(&mut args, "--password")?;
            match arg(&args, 1, "endpoints list|add|delete")? {
                "list" => {
                    let eps = c.members(ENDPOINTS)?;
                    if opts.json {
                        print_json(&Value::Array(eps));
                        return Ok(());
                    }
                    let mut rows = vec![vec![
                        "ID".into(),
                        "SYSTEM".into(),
                        "PERSONA".into(),
                        "ADDRESS".into(),
                        "STATE".into(),
                    ]];
                    for e in &eps {
                        rows.push(vec![
                            s(&e["Id"]),
                            s(&e["SystemId"]),
                            s(&e["Persona"]),
                            s(&e["Address"]),
                            s(&e["Status"]["State"]),
                        ]);
                    }
                    table(rows);
                }
                "add" => {
                    let id = arg(&args, 2, "ID")?;
                    let system = c.system(arg(&args, 3, "SYSTEM")?)?;
                    let system_id = system.rsplit('/').next().unwrap_or("").to_owned();
                    let persona = arg(&args, 4, "PERSONA")?;
                    let address = arg(&args, 5, "ADDRESS")?;
                    let mut body =
                        json!({"Id": id, "SystemId": system_id, "Persona": persona, "Address": address});
                    if let Some(u) = user {
                        body["UserName"] = json!(u);
                    }
                    if let Some(p) = password {
                        body["Password"] = json!(p);
                    }
                    c.request("POST", ENDPOINTS, Some(&body))?.ok()?;
                    println!("endpoint {id} ({persona}) for {system_id} on {address}");
                }
                "delete" => {
                    let id = arg(&args, 2, "ID")?;
                    c.request("DELETE", &format!("{ENDPOINTS}/{id}"), None)?.ok()?;
                    println!("endpoint {id} deleted");
                }
                other => return fail(format!("unknown endpoints command '{other}'")),
            }
        }
        "hosts" => {
            let hosts = c.members("/redfish/v1/AggregationService/AggregationSources")?;
            if opts.json {
                print_json(&Value::Array(hosts));
                return Ok(());
            }
            let mut rows = vec![vec![
                "HOST".into(),
                "STATE".into(),
                "SYSTEMS".into(),
                "FREE MiB".into(),
                "LABELS".into(),
                "URI".into(),
            ]];
            for h in &hosts {
                let redfin = &h["Oem"]["Redfin"];
                let labels: Vec<String> = redfin["Labels"]
                    .as_array()
                    .map(|l| l.iter().map(s).collect())
                    .unwrap_or_default();
                let mut state = s(&h["Status"]["State"]);
                if let Some(why) = redfin["UnreachableReason"].as_str() {
                    state = format!("{state} ({why})");
                }
                rows.push(vec![
                    s(&h["Id"]),
                    state,
                    s(&h["Links"]["ResourcesAccessed@odata.count"]),
                    s(&redfin["Capacity"]["FreeMemoryMiB"]),
                    labels.join(","),
                    s(&h["HostName"]),
                ]);
            }
            table(rows);
        }
        "projects" => {
            const PROJECTS: &str = "/redfish/v1/Oem/Redfin/Projects";
            let mut quotas = serde_json::Map::new();
            for (flag, key) in [
                ("--max-systems", "MaxSystems"),
                ("--max-vcpus", "MaxVCPUs"),
                ("--max-memory-mib", "MaxMemoryMiB"),
                ("--max-disk-gib", "MaxDiskGiB"),
            ] {
                if let Some(v) = take_option(&mut args, flag)? {
                    let n: u64 = v
                        .parse()
                        .map_err(|_| Failure(format!("{flag} takes a number, not '{v}'")))?;
                    quotas.insert(key.to_owned(), json!(n));
                }
            }
            match arg(&args, 1, "projects list|add|delete")? {
                "list" => {
                    let projects = c.members(PROJECTS)?;
                    if opts.json {
                        print_json(&Value::Array(projects));
                        return Ok(());
                    }
                    let mut rows = vec![vec![
                        "PROJECT".into(),
                        "SYSTEMS".into(),
                        "VCPUS".into(),
                        "MEMORY MiB".into(),
                        "ACCOUNTS".into(),
                    ]];
                    for p in &projects {
                        let (u, q) = (&p["Usage"], &p["Quotas"]);
                        rows.push(vec![
                            s(&p["Id"]),
                            format!("{}/{}", s(&u["Systems"]), s(&q["MaxSystems"])),
                            format!("{}/{}", s(&u["VCPUs"]), s(&q["MaxVCPUs"])),
                            format!("{}/{}", s(&u["MemoryMiB"]), s(&q["MaxMemoryMiB"])),
                            s(&p["Links"]["Accounts@odata.count"]),
                        ]);
                    }
                    table(rows);
                }
                "add" => {
                    let id = arg(&args, 2, "ID")?;
                    let mut body = json!({"Id": id});
                    if !quotas.is_empty() {
                        body["Quotas"] = Value::Object(quotas);
                    }
                    c.request("POST", PROJECTS, Some(&body))?.ok()?;
                    println!("project {id} created");
                }
                "delete" => {
                    let id = arg(&args, 2, "ID")?;
                    c.request("DELETE", &format!("{PROJECTS}/{id}"), None)?.ok()?;
                    println!("project {id} deleted");
                }
                other => return fail(format!("unknown projects command '{other}'")),
            }
        }
        "get" => print_json(&c.get(arg(&args, 1, "PATH")?)?),
        "delete" => {
            let r = c.request("DELETE", arg(&args, 1, "PATH")?, None)?.ok()?;
            if !r.is_null() && r != Value::String(String::new()) {
                print_json(&r);
            }
        }
        "post" | "patch" => {
            let method = command.to_uppercase();
            let r = c
                .request(&method, arg(&args, 1, "PATH")?, Some(&body_arg(&args, 2)?))?
                .ok()?;
            if !r.is_null() && r != Value::String(String::new()) {
                print_json(&r);
            }
        }
        "" => return fail(USAGE),
        other => return fail(format!("unknown command '{other}'\n\n{USAGE}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let mut opts = Options {
        url: env("BMCCTL_URL").unwrap_or_else(|| "https://127.0.0.1:8443".into()),
        user: env("BMCCTL_USER").unwrap_or_else(|| "admin".into()),
        password: env("BMCCTL_PASSWORD"),
        cacert: env("BMCCTL_CACERT").map(PathBuf::from),
        insecure: false,
        json: false,
    };
    let mut rest = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let r = match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!("bmcctl {}", bmcd::VERSION);
                return ExitCode::SUCCESS;
            }
            "--url" => value("--url").map(|v| opts.url = v),
            "-u" | "--user" if rest.is_empty() => value("--user").map(|v| opts.user = v),
            "-p" | "--password" if rest.is_empty() => value("--password").map(|v| opts.password = Some(v)),
            "--cacert" => value("--cacert").map(|v| opts.cacert = Some(PathBuf::from(v))),
            "-k" | "--insecure" => {
                opts.insecure = true;
                Ok(())
            }
            "--json" => {
                opts.json = true;
                Ok(())
            }
            _ => {
                rest.push(a);
                Ok(())
            }
        };
        if let Err(e) = r {
            eprintln!("bmcctl: {e}");
            return ExitCode::from(2);
        }
    }
    match run(&opts, rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(e)) => {
            eprintln!("bmcctl: {e}");
            ExitCode::FAILURE
        }
    }
}
