//! Reads what a BMC reports from a libvirt domain XML description.

use crate::model::{
    BootMode, BootOption, BootSource, Consoles, Drive, DriveKind, EthernetInterface, FirmwareSettings,
    GraphicsListen,
};

/// The facts of a domain's XML that become Redfish properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDescription {
    pub name: String,
    pub uuid: String,
    pub description: Option<String>,
    pub vcpus: u32,
    pub memory_kib: u64,
    pub architecture: String,
    pub machine: String,
    pub boot_mode: BootMode,
    pub interfaces: Vec<EthernetInterface>,
    pub drives: Vec<Drive>,
    pub boot_options: Vec<BootOption>,
    /// Option ids in boot order (per-device `<boot order>` or `<os><boot dev>`).
    pub boot_order: Vec<String>,
    pub direct_kernel_boot: bool,
    pub firmware: FirmwareSettings,
    pub usb_controller: bool,
    pub consoles: Consoles,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainXmlError(pub String);

impl std::fmt::Display for DomainXmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unreadable domain XML: {}", self.0)
    }
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

/// Converts a libvirt memory amount with its unit to KiB.
fn to_kib(value: u64, unit: Option<&str>) -> u64 {
    let bytes_per_unit: u64 = match unit.unwrap_or("KiB") {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1024,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => 1024,
    };
    value.saturating_mul(bytes_per_unit) / 1024
}

pub fn parse(xml: &str) -> Result<DomainDescription, DomainXmlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| DomainXmlError(e.to_string()))?;
    let dom = doc.root_element();
    if !dom.has_tag_name("domain") {
        return Err(DomainXmlError("root element is not <domain>".into()));
    }
    let name = child_text(dom, "name")
        .ok_or_else(|| DomainXmlError("no <name>".into()))?
        .to_owned();
    let uuid = child_text(dom, "uuid")
        .ok_or_else(|| DomainXmlError("no <uuid>".into()))?
        .to_ascii_lowercase();
    let description = child_text(dom, "description")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let vcpus = child_text(dom, "vcpu").and_then(|v| v.parse().ok()).unwrap_or(1);
    let memory_node = child(dom, "currentMemory").or_else(|| child(dom, "memory"));
    let memory_kib = memory_node
        .and_then(|m| {
            let value: u64 = m.text()?.trim().parse().ok()?;
            Some(to_kib(value, m.attribute("unit")))
        })
        .unwrap_or(0);

    let os = child(dom, "os");
    let os_type = os.and_then(|o| child(o, "type"));
    let architecture = os_type
        .and_then(|t| t.attribute("arch"))
        .unwrap_or("x86_64")
        .to_owned();
    let machine = os_type
        .and_then(|t| t.attribute("machine"))
        .unwrap_or("")
        .to_owned();
    let uefi = os.is_some_and(|o| {
        o.attribute("firmware") == Some("efi")
            || child(o, "loader").is_some_and(|l| l.attribute("type") == Some("pflash"))
    });
    let boot_mode = if uefi { BootMode::UEFI } else { BootMode::Legacy };
    let secure_boot = uefi
        && os.is_some_and(|o| {
            child(o, "loader").is_some_and(|l| l.attribute("secure") == Some("yes"))
                || child(o, "firmware").is_some_and(|f| {
                    f.children().any(|c| {
                        c.has_tag_name("feature")
                            && c.attribute("name") == Some("secure-boot")
                            && c.attribute("enabled") == Some("yes")
                    })
                })
        });
    let smbios = |name: &str| {
        child(dom, "sysinfo")
            .filter(|s| s.attribute("type") == Some("smbios"))
            .and_then(|s| child(s, "system"))
            .and_then(|sys| {
                sys.children()
                    .find(|e| e.has_tag_name("entry") && e.attribute("name") == Some(name))
            })
            .and_then(|e| e.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let firmware = FirmwareSettings {
        mode: boot_mode,
        secure_boot,
        serial_number: smbios("serial"),
        manufacturer: smbios("manufacturer"),
        product_name: smbios("product"),
    };

    let mut interfaces = Vec::new();
    let mut drives = Vec::new();
    let mut consoles = Consoles::default();
    if let Some(devices) = child(dom, "devices") {
        for dev in devices.children().filter(|c| c.is_element()) {
            match dev.tag_name().name() {
                "interface" => {
                    let Some(mac) = child(dev, "mac").and_then(|m| m.attribute("address")) else {
                        continue;
                    };
                    let source = child(dev, "source");
                    let attached_to = source
                        .and_then(|s| {
                            s.attribute("network")
                                .or_else(|| s.attribute("bridge"))
                                .or_else(|| s.attribute("dev"))
                        })
                        .map(str::to_owned)
                        .or_else(|| dev.attribute("type").map(str::to_owned));
                    let link_up = child(dev, "link").and_then(|l| l.attribute("state")) != Some("down");
                    interfaces.push(EthernetInterface {
                        id: format!("NIC{}", interfaces.len() + 1),
                        mac_address: mac.to_ascii_uppercase(),
                        model: child(dev, "model")
                            .and_then(|m| m.attribute("type"))
                            .map(str::to_owned),
                        attached_to,
                        link_up,
                    });
                }
                "disk" => {
                    let kind = match dev.attribute("device").unwrap_or("disk") {
                        "cdrom" => DriveKind::Cdrom,
                        "floppy" => DriveKind::Floppy,
                        _ => DriveKind::Disk,
                    };
                    let Some(target) = child(dev, "target") else {
                        continue;
                    };
                    let Some(id) = target.attribute("dev") else {
                        continue;
                    };
                    let source = child(dev, "source").and_then(|s| {
                        s.attribute("file")
                            .or_else(|| s.attribute("dev"))
                            .or_else(|| s.attribute("volume"))
                            .or_else(|| s.attribute("name"))
                            .map(str::to_owned)
                    });
                    drives.push(Drive {
                        id: id.to_owned(),
                        kind,
                        bus: target.attribute("bus").unwrap_or("ide").to_owned(),
                        capacity_bytes: None,
                        source,
                        read_only: child(dev, "readonly").is_some() || kind == DriveKind::Cdrom,
                    });
                }
                "graphics" => {
                    let listen = graphics_listen(dev);
                    match dev.attribute("type") {
                        Some("vnc") if consoles.vnc.is_none() => consoles.vnc = Some(listen),
                        Some("spice") if consoles.spice.is_none() => consoles.spice = Some(listen),
                        _ => {}
                    }
                }
                "serial" | "console" => consoles.serial = true,
                _ => {}
            }
        }
    }
    let boot_options = boot_options(&interfaces, &drives);
    let boot_order = boot_order(dom, &boot_options);
    let direct_kernel_boot = os.is_some_and(|o| child(o, "kernel").is_some());
    let usb_controller = child(dom, "devices").is_some_and(|d| {
        d.children().any(|c| {
            c.has_tag_name("controller")
                && c.attribute("type") == Some("usb")
                && c.attribute("model") != Some("none")
        })
    });
    Ok(DomainDescription {
        consoles,
        usb_controller,
        firmware,
        boot_options,
        boot_order,
        direct_kernel_boot,
        name,
        uuid,
        description,
        vcpus,
        memory_kib,
        architecture,
        machine,
        boot_mode,
        interfaces,
        drives,
    })
}

/// The TCP address and port of a `<graphics>` element. libvirt writes the
/// port it chose (autoport) into the live definition; `-1` means not yet.
fn graphics_listen(dev: roxmltree::Node<'_, '_>) -> GraphicsListen {
    let port = dev
        .attribute("port")
        .and_then(|p| p.parse::<i64>().ok())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0);
    let address = child(dev, "listen")
        .filter(|l| {
            l.attribute("type")
                .is_none_or(|t| t == "address" || t == "network")
        })
        .and_then(|l| l.attribute("address"))
        .or_else(|| dev.attribute("listen"))
        .map(str::to_owned);
    let socket_only =
        child(dev, "listen").is_some_and(|l| matches!(l.attribute("type"), Some("socket" | "none")));
    GraphicsListen {
        address,
        port: if socket_only { None } else { port },
    }
}

fn boot_options(interfaces: &[EthernetInterface], drives: &[Drive]) -> Vec<BootOption> {
    let mut options: Vec<BootOption> = drives
        .iter()
        .map(|d| BootOption {
            id: d.id.clone(),
            source: match (d.kind, d.bus.as_str()) {
                (DriveKind::Cdrom, _) => BootSource::Cd,
                (DriveKind::Floppy, _) => BootSource::Floppy,
                (DriveKind::Disk, "usb") => BootSource::Usb,
                (DriveKind::Disk, _) => BootSource::Hdd,
            },
        })
        .collect();
    options.extend(interfaces.iter().map(|n| BootOption {
        id: n.id.clone(),
        source: BootSource::Pxe,
    }));
    options
}

/// The device elements that can carry `<boot order>`, paired with option ids.
fn bootable_devices<'a, 'i>(dom: roxmltree::Node<'a, 'i>) -> Vec<(String, roxmltree::Node<'a, 'i>)> {
    let mut out = Vec::new();
    let Some(devices) = child(dom, "devices") else {
        return out;
    };
    let mut nic = 0;
    for dev in devices.children().filter(|c| c.is_element()) {
        match dev.tag_name().name() {
            "disk" => {
                if let Some(id) = child(dev, "target").and_then(|t| t.attribute("dev")) {
                    out.push((id.to_owned(), dev));
                }
            }
            "interface" if child(dev, "mac").and_then(|m| m.attribute("address")).is_some() => {
                nic += 1;
                out.push((format!("NIC{nic}"), dev));
            }
            _ => {}
        }
    }
    out
}

fn boot_order(dom: roxmltree::Node<'_, '_>, options: &[BootOption]) -> Vec<String> {
    let mut per_device: Vec<(u32, String)> = bootable_devices(dom)
        .into_iter()
        .filter_map(|(id, dev)| {
            let order = child(dev, "boot")?.attribute("order")?.parse().ok()?;
            Some((order, id))
        })
        .collect();
    if !per_device.is_empty() {
        per_device.sort();
        return per_device.into_iter().map(|(_, id)| id).collect();
    }
    // Legacy <os><boot dev='...'/>: each names a class of device; the firmware
    // tries the first device of that class.
    let first = |pred: &dyn Fn(&BootOption) -> bool| options.iter().find(|o| pred(o)).map(|o| o.id.clone());
    let mut order = Vec::new();
    let os_boots: Vec<&str> = child(dom, "os")
        .map(|o| {
            o.children()
                .filter(|c| c.has_tag_name("boot"))
                .filter_map(|b| b.attribute("dev"))
                .collect()
        })
        .unwrap_or_default();
    for dev in os_boots {
        let id = match dev {
            "hd" => first(&|o| matches!(o.source, BootSource::Hdd | BootSource::Usb)),
            "cdrom" => first(&|o| o.source == BootSource::Cd),
            "fd" => first(&|o| o.source == BootSource::Floppy),
            "network" => first(&|o| o.source == BootSource::Pxe),
            _ => None,
        };
        if let Some(id) = id {
            if !order.contains(&id) {
                order.push(id);
            }
        }
    }
    order
}

/// Rewrites a domain definition so that it boots from `order` (option ids,
/// first boots first): every `<boot>` element is removed and each listed device
/// gets `<boot order='N'/>`. Everything else is kept byte for byte.
pub fn with_boot_order(xml: &str, order: &[String]) -> Result<String, DomainXmlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| DomainXmlError(e.to_string()))?;
    let dom = doc.root_element();
    let devices = bootable_devices(dom);
    for id in order {
        if !devices.iter().any(|(d, _)| d == id) {
            return Err(DomainXmlError(format!("no bootable device {id}")));
        }
    }
    // (position, bytes to remove, text to insert), applied from the end.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if let Some(os) = child(dom, "os") {
        for b in os.children().filter(|c| c.has_tag_name("boot")) {
            let r = b.range();
            edits.push((r.start, r.end - r.start, String::new()));
        }
    }
    for (id, dev) in &devices {
        for b in dev.children().filter(|c| c.has_tag_name("boot")) {
            let r = b.range();
            edits.push((r.start, r.end - r.start, String::new()));
        }
        if let Some(pos) = order.iter().position(|o| o == id) {
            let r = dev.range();
            let text = &xml[r.clone()];
            let Some(close) = text.rfind("</") else {
                return Err(DomainXmlError(format!("device {id} has no closing tag")));
            };
            edits.push((r.start + close, 0, format!("<boot order='{}'/>", pos + 1)));
        }
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = xml.to_owned();
    for (pos, len, text) in edits {
        out.replace_range(pos..pos + len, &text);
    }
    Ok(out)
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// Rewrites a domain definition's firmware: `<os firmware='efi'>` with libvirt's
/// firmware selection (Secure Boot and enrolled keys as features, SMM on) or
/// legacy BIOS, and the SMBIOS system strings. Everything else is kept.
pub fn with_firmware(xml: &str, fw: &FirmwareSettings) -> Result<String, DomainXmlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| DomainXmlError(e.to_string()))?;
    let dom = doc.root_element();
    let os = child(dom, "os").ok_or_else(|| DomainXmlError("no <os>".into()))?;
    if fw.secure_boot && fw.mode != BootMode::UEFI {
        return Err(DomainXmlError("Secure Boot needs UEFI firmware".into()));
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    // The <os> start tag, with `firmware` set or removed.
    let os_range = os.range();
    let os_text = &xml[os_range.clone()];
    let start_len = os_text
        .find('>')
        .ok_or_else(|| DomainXmlError("malformed <os>".into()))?
        + 1;
    let mut start = String::from("<os");
    for a in os.attributes().filter(|a| a.name() != "firmware") {
        start.push_str(&format!(" {}='{}'", a.name(), xml_escape(a.value())));
    }
    let uefi = fw.mode == BootMode::UEFI;
    if uefi {
        start.push_str(" firmware='efi'");
    }
    start.push('>');
    let mut inner = String::new();
    if uefi {
        let yn = |b: bool| if b { "yes" } else { "no" };
        inner.push_str(&format!(
            "<firmware><feature enabled='{0}' name='enrolled-keys'/><feature enabled='{0}' name='secure-boot'/></firmware>",
            yn(fw.secure_boot)
        ));
    }
    let entries: Vec<(&str, &String)> = [
        ("manufacturer", &fw.manufacturer),
        ("product", &fw.product_name),
        ("serial", &fw.serial_number),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
    .collect();
    if !entries.is_empty() {
        inner.push_str("<smbios mode='sysinfo'/>");
    }
    edits.push((os_range.start, start_len, format!("{start}{inner}")));
    for c in os.children().filter(|c| {
        c.is_element() && matches!(c.tag_name().name(), "loader" | "nvram" | "firmware" | "smbios")
    }) {
        let r = c.range();
        edits.push((r.start, r.end - r.start, String::new()));
    }
    // SMBIOS strings.
    for s in dom
        .children()
        .filter(|c| c.has_tag_name("sysinfo") && c.attribute("type") == Some("smbios"))
    {
        let r = s.range();
        edits.push((r.start, r.end - r.start, String::new()));
    }
    if !entries.is_empty() {
        let mut sysinfo = String::from("<sysinfo type='smbios'><system>");
        for (name, value) in &entries {
            sysinfo.push_str(&format!("<entry name='{name}'>{}</entry>", xml_escape(value)));
        }
        sysinfo.push_str("</system></sysinfo>\n  ");
        edits.push((os_range.start, 0, sysinfo));
    }
    // Secure Boot firmware needs SMM.
    if fw.secure_boot {
        match child(dom, "features") {
            Some(f) if child(f, "smm").is_some() => {}
            Some(f) => {
                let r = f.range();
                let text = &xml[r.clone()];
                if text.ends_with("/>") {
                    edits.push((
                        r.start,
                        r.end - r.start,
                        "<features><smm state='on'/></features>".into(),
                    ));
                } else {
                    let open = text.find('>').unwrap_or(0) + 1;
                    edits.push((r.start + open, 0, "<smm state='on'/>".into()));
                }
            }
            None => edits.push((
                os_range.end,
                0,
                "\n  <features><smm state='on'/></features>".into(),
            )),
        }
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = xml.to_owned();
    for (pos, len, text) in edits {
        out.replace_range(pos..pos + len, &text);
    }
    Ok(out)
}

/// The first `sdX` name not in `used`.
pub fn free_disk_target(used: &[String]) -> Option<String> {
    ('a'..='z').map(|c| format!("sd{c}")).find(|t| !used.contains(t))
}

/// A read-only USB disk element backed by `source`.
pub fn usb_disk(target: &str, source: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/>\
         <target dev='{target}' bus='usb'/><readonly/></disk>",
        xml_escape(source)
    )
}

/// An empty (or filled) SATA CD drive element with target `target`: the
/// virtual CD every BMC offers, for a system defined without one. libvirt adds
/// the AHCI controller it needs on i440fx machines; q35 has one built in.
pub fn cd_drive(target: &str, source: Option<&str>) -> String {
    let source = source
        .map(|s| format!("<source file='{}'/>", xml_escape(s)))
        .unwrap_or_default();
    format!(
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>{source}\
         <target dev='{target}' bus='sata'/><readonly/></disk>"
    )
}

/// A virtio disk element for a pool volume at `disk.path`.
pub fn volume_disk(target: &str, disk: &crate::model::NewDisk) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='{}'/><source file='{}'/>\
         <target dev='{target}' bus='virtio'/></disk>",
        disk.format.as_str(),
        xml_escape(&disk.path)
    )
}

/// The definition of a composed system: `domain_type` `qemu` (TCG, q35) or
/// `test` (libvirt's test driver), its disks on virtio (`vda` first, the boot
/// disk), one NIC, a serial console (logged to a file when asked), VNC on
/// 127.0.0.1 and an empty SATA CD drive for virtual media.
pub fn new_domain(s: &crate::model::NewSystem, domain_type: &str) -> String {
    let mut x = String::new();
    x.push_str(&format!("<domain type='{}'>\n", xml_escape(domain_type)));
    x.push_str(&format!("  <name>{}</name>\n", xml_escape(&s.name)));
    x.push_str(&format!("  <uuid>{}</uuid>\n", xml_escape(&s.id)));
    x.push_str("  <description>Composed by Redfin</description>\n");
    x.push_str(&format!("  <memory unit='MiB'>{}</memory>\n", s.memory_mib));
    x.push_str(&format!("  <vcpu>{}</vcpu>\n", s.vcpus));
    let uefi = s.firmware == BootMode::UEFI;
    let qemu = domain_type == "qemu";
    x.push_str(if uefi {
        "  <os firmware='efi'>\n"
    } else {
        "  <os>\n"
    });
    if qemu {
        x.push_str("    <type arch='x86_64' machine='q35'>hvm</type>\n");
    } else {
        x.push_str("    <type arch='x86_64'>hvm</type>\n");
    }
    if uefi {
        x.push_str("    <firmware><feature enabled='no' name='enrolled-keys'/><feature enabled='no' name='secure-boot'/></firmware>\n");
    }
    match &s.direct_boot {
        Some(k) => {
            x.push_str(&format!("    <kernel>{}</kernel>\n", xml_escape(&k.kernel)));
            if let Some(i) = &k.initrd {
                x.push_str(&format!("    <initrd>{}</initrd>\n", xml_escape(i)));
            }
            if let Some(c) = &k.cmdline {
                x.push_str(&format!("    <cmdline>{}</cmdline>\n", xml_escape(c)));
            }
        }
        None => x.push_str("    <boot dev='hd'/>\n    <boot dev='cdrom'/>\n    <boot dev='network'/>\n"),
    }
    x.push_str("  </os>\n  <features><acpi/><apic/></features>\n  <clock offset='utc'/>\n");
    x.push_str("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n");
    x.push_str("  <devices>\n");
    for (i, d) in s.disks.iter().enumerate() {
        let target = format!("vd{}", char::from(b'a' + (i as u8 % 26)));
        x.push_str(&format!("    {}\n", volume_disk(&target, d)));
    }
    x.push_str("    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda' bus='sata'/><readonly/></disk>\n");
    match s.network.as_deref() {
        None => x.push_str("    <interface type='user'><model type='virtio'/></interface>\n"),
        Some("") => {}
        Some(n) => x.push_str(&format!(
            "    <interface type='network'><source network='{}'/><model type='virtio'/></interface>\n",
            xml_escape(n)
        )),
    }
    if qemu {
        match &s.console_log {
            Some(log) => x.push_str(&format!(
                "    <serial type='pty'><log file='{}' append='off'/><target port='0'/></serial>\n",
                xml_escape(log)
            )),
            None => x.push_str("    <serial type='pty'><target port='0'/></serial>\n"),
        }
        x.push_str("    <console type='pty'><target type='serial' port='0'/></console>\n");
        x.push_str("    <graphics type='vnc' autoport='yes' listen='127.0.0.1'><listen type='address' address='127.0.0.1'/></graphics>\n");
        x.push_str("    <video><model type='vga'/></video>\n    <memballoon model='none'/>\n");
    }
    x.push_str("  </devices>\n</domain>\n");
    x
}

/// The whole definition with `element` added as the last device, for drivers
/// that cannot attach a device to a stored definition (libvirt's test driver).
pub fn with_device(xml: &str, element: &str) -> Result<String, DomainXmlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| DomainXmlError(e.to_string()))?;
    let devices = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("devices"))
        .ok_or_else(|| DomainXmlError("the domain has no <devices>".into()))?;
    let range = devices.range();
    let mut out = xml.to_owned();
    let devices_xml = &xml[range.clone()];
    if devices_xml.ends_with("/>") {
        out.replace_range(range, &format!("<devices>{element}</devices>"));
    } else {
        let close = range.end - "</devices>".len();
        out.insert_str(close, element);
    }
    Ok(out)
}

/// The whole definition without the `<disk>` whose target is `target`.
pub fn without_disk(xml: &str, target: &str) -> Result<String, DomainXmlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| DomainXmlError(e.to_string()))?;
    let disk = doc
        .descendants()
        .filter(|n| n.has_tag_name("disk"))
        .find(|n| child(*n, "target").and_then(|t| t.attribute("dev")) == Some(target))
        .ok_or_else(|| DomainXmlError(format!("no disk {target}")))?;
    let mut out = xml.to_owned();
    out.replace_range(disk.range(), "");
    Ok(out)
}

/// The `<disk>` element with target `target`, as the domain has it.
pub fn disk_element(xml: &str, target: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let disk = doc
        .descendants()
        .filter(|n| n.has_tag_name("disk"))
        .find(|n| child(*n, "target").and_then(|t| t.attribute("dev")) == Some(target))?;
    Some(xml[disk.range()].to_owned())
}

/// The `<disk device='cdrom'>` element with target `target`, rewritten to hold
/// `source` (a file) or to be empty, for `virDomainUpdateDeviceFlags`. The rest
/// of the element (bus, address, alias) is kept.
pub fn cdrom_with_source(xml: &str, target: &str, source: Option<&str>) -> Result<String, DomainXmlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| DomainXmlError(e.to_string()))?;
    let disk = doc
        .descendants()
        .filter(|n| n.has_tag_name("disk") && n.attribute("device") == Some("cdrom"))
        .find(|n| child(*n, "target").and_then(|t| t.attribute("dev")) == Some(target))
        .ok_or_else(|| DomainXmlError(format!("no CD drive {target}")))?;
    let range = disk.range();
    let mut edits: Vec<(usize, usize, String)> = disk
        .children()
        .filter(|c| c.has_tag_name("source"))
        .map(|c| {
            let r = c.range();
            (r.start - range.start, r.end - r.start, String::new())
        })
        .collect();
    let text = &xml[range.clone()];
    let open_end = text
        .find('>')
        .ok_or_else(|| DomainXmlError("malformed disk element".into()))?
        + 1;
    if let Some(path) = source {
        edits.push((open_end, 0, format!("<source file='{}'/>", xml_escape(path))));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_owned();
    for (pos, len, new) in edits {
        out.replace_range(pos..pos + len, &new);
    }
    // An empty drive may have been declared as another disk type; a file it holds now.
    if source.is_some() && disk.attribute("type") != Some("file") {
        if let Some(t) = disk.attribute("type") {
            out = out.replacen(&format!("type='{t}'"), "type='file'", 1);
            out = out.replacen(&format!("type=\"{t}\""), "type='file'", 1);
        }
    }
    Ok(out)
}

/// The whole definition with the CD drive `target` holding `source`, for
/// drivers that can redefine a domain but not update one device of its
/// stored definition (libvirt's test driver).
pub fn with_cdrom_source(xml: &str, target: &str, source: Option<&str>) -> Result<String, DomainXmlError> {
    let element = cdrom_with_source(xml, target, source)?;
    let doc = roxmltree::Document::parse(xml).map_err(|e| DomainXmlError(e.to_string()))?;
    let range = doc
        .descendants()
        .filter(|n| n.has_tag_name("disk") && n.attribute("device") == Some("cdrom"))
        .find(|n| child(*n, "target").and_then(|t| t.attribute("dev")) == Some(target))
        .ok_or_else(|| DomainXmlError(format!("no CD drive {target}")))?
        .range();
    let mut out = xml.to_owned();
    out.replace_range(range, &element);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_definition_gets_the_new_cd() {
        let xml = "<domain><devices><disk type='file' device='disk'><target dev='vda'/></disk>\
                   <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk></devices></domain>";
        let out = with_cdrom_source(xml, "sda", Some("/m/a.iso")).expect("rewrites");
        assert!(out.contains("<disk type='file' device='cdrom'><source file='/m/a.iso'/><target dev='sda' bus='sata'/></disk>"), "{out}");
        assert!(out.contains("<target dev='vda'/>"));
        let back = with_cdrom_source(&out, "sda", None).expect("rewrites");
        assert_eq!(back, xml);
        assert!(with_cdrom_source(xml, "sdz", None).is_err());
    }

    #[test]
    fn a_definition_without_a_cd_drive_gets_one() {
        let xml = "<domain><name>x</name><uuid>00000000-0000-4000-8000-000000000001</uuid><devices><disk type='file' device='disk'><target dev='vda'/></disk></devices></domain>";
        let out = with_device(xml, &cd_drive("sda", None)).expect("adds");
        let desc = parse(&out).expect("parses");
        let cd: Vec<_> = desc
            .drives
            .iter()
            .filter(|d| d.kind == DriveKind::Cdrom)
            .collect();
        assert_eq!(cd.len(), 1, "{out}");
        assert_eq!((cd[0].id.as_str(), cd[0].source.as_deref()), ("sda", None));
        let full = with_device(xml, &cd_drive("sdb", Some("/c/a'.iso"))).expect("adds");
        let desc = parse(&full).expect("parses");
        assert!(desc
            .drives
            .iter()
            .any(|d| d.id == "sdb" && d.source.as_deref() == Some("/c/a'.iso")));
        let empty = with_device(
            "<domain><name>x</name><devices/></domain>",
            &cd_drive("sda", None),
        )
        .expect("adds");
        assert!(
            empty.contains("<devices><disk type='file' device='cdrom'>"),
            "{empty}"
        );
        assert!(with_device("<domain><name>x</name></domain>", "<disk/>").is_err());
    }

    const Q35_UEFI: &str = r#"<domain type='qemu'>
  <name>node-1</name>
  <uuid>6F9A1B2C-0000-4000-8000-000000000001</uuid>
  <description>lab node</description>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='MiB'>256</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/var/lib/images/node-1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:01'/><source network='default'/>
      <model type='virtio'/></interface>
    <interface type='bridge'><mac address='52:54:00:aa:bb:02'/><source bridge='br0'/>
      <link state='down'/></interface>
  </devices>
</domain>"#;

    #[test]
    fn reads_identity_sizes_and_firmware() {
        let d = parse(Q35_UEFI).expect("parses");
        assert_eq!(d.name, "node-1");
        assert_eq!(d.uuid, "6f9a1b2c-0000-4000-8000-000000000001");
        assert_eq!(d.description.as_deref(), Some("lab node"));
        assert_eq!(d.vcpus, 2);
        assert_eq!(d.memory_kib, 256 * 1024);
        assert_eq!(d.machine, "pc-q35-7.2");
        assert_eq!(d.boot_mode, BootMode::UEFI);
    }

    #[test]
    fn reads_nics_in_device_order() {
        let d = parse(Q35_UEFI).expect("parses");
        assert_eq!(d.interfaces.len(), 2);
        assert_eq!(d.interfaces[0].id, "NIC1");
        assert_eq!(d.interfaces[0].mac_address, "52:54:00:AA:BB:01");
        assert_eq!(d.interfaces[0].model.as_deref(), Some("virtio"));
        assert_eq!(d.interfaces[0].attached_to.as_deref(), Some("default"));
        assert!(d.interfaces[0].link_up);
        assert_eq!(d.interfaces[1].attached_to.as_deref(), Some("br0"));
        assert!(!d.interfaces[1].link_up);
    }

    #[test]
    fn reads_disks_and_empty_cd_drives() {
        let d = parse(Q35_UEFI).expect("parses");
        assert_eq!(d.drives.len(), 2);
        assert_eq!(d.drives[0].id, "vda");
        assert_eq!(d.drives[0].kind, DriveKind::Disk);
        assert_eq!(
            d.drives[0].source.as_deref(),
            Some("/var/lib/images/node-1.qcow2")
        );
        assert_eq!(d.drives[1].kind, DriveKind::Cdrom);
        assert_eq!(d.drives[1].source, None);
        assert!(d.drives[1].read_only);
    }

    #[test]
    fn legacy_bios_when_no_efi_firmware() {
        let xml = "<domain><name>a</name><uuid>u</uuid><memory>1024</memory>\
                   <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>";
        let d = parse(xml).expect("parses");
        assert_eq!(d.boot_mode, BootMode::Legacy);
        assert_eq!(d.memory_kib, 1024);
        assert_eq!(d.vcpus, 1);
    }

    #[test]
    fn boot_order_from_per_device_and_legacy_elements() {
        let d = parse(Q35_UEFI).expect("parses");
        assert_eq!(d.boot_order, Vec::<String>::new());
        let ids: Vec<(&str, BootSource)> = d.boot_options.iter().map(|o| (o.id.as_str(), o.source)).collect();
        assert_eq!(
            ids,
            vec![
                ("vda", BootSource::Hdd),
                ("sda", BootSource::Cd),
                ("NIC1", BootSource::Pxe),
                ("NIC2", BootSource::Pxe)
            ]
        );
        let legacy = Q35_UEFI.replace(
            "<os firmware='efi'>",
            "<os firmware='efi'><boot dev='cdrom'/><boot dev='hd'/>",
        );
        assert_eq!(parse(&legacy).expect("parses").boot_order, vec!["sda", "vda"]);
    }

    #[test]
    fn rewriting_the_boot_order_keeps_everything_else() {
        let legacy = Q35_UEFI.replace("<os firmware='efi'>", "<os firmware='efi'><boot dev='hd'/>");
        let order = vec!["NIC2".to_owned(), "vda".to_owned()];
        let out = with_boot_order(&legacy, &order).expect("rewrites");
        let d = parse(&out).expect("still parses");
        assert_eq!(d.boot_order, order);
        assert!(!out.contains("<boot dev="));
        assert_eq!(d.drives, parse(&legacy).expect("parses").drives);
        // And back to no explicit order.
        let cleared = with_boot_order(&out, &[]).expect("rewrites");
        assert!(!cleared.contains("<boot"));
        assert!(with_boot_order(&legacy, &["nope".to_owned()]).is_err());
    }

    #[test]
    fn cd_drive_gets_and_loses_its_medium() {
        let full = cdrom_with_source(Q35_UEFI, "sda", Some("/cache/a'b.img")).expect("insert");
        assert!(full.starts_with("<disk"));
        assert!(full.contains("<source file='/cache/a&apos;b.img'/>"));
        assert!(full.contains("<target dev='sda' bus='sata'/>"));
        let dom = Q35_UEFI.replace(
            "<disk type='file' device='cdrom'>",
            "<disk type='file' device='cdrom'><source file='/old.iso'/>",
        );
        let empty = cdrom_with_source(&dom, "sda", None).expect("eject");
        assert!(!empty.contains("source"));
        assert!(cdrom_with_source(Q35_UEFI, "vda", None).is_err(), "vda is a disk");
    }

    #[test]
    fn firmware_switches_between_uefi_and_bios_and_sets_smbios() {
        let legacy = "<domain type='qemu'><name>a</name><uuid>u</uuid><memory>1024</memory>\
                      <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>\
                      <features><acpi/></features></domain>";
        let uefi_sb = FirmwareSettings {
            mode: BootMode::UEFI,
            secure_boot: true,
            serial_number: Some("SN-42".into()),
            manufacturer: None,
            product_name: Some("Lab <node>".into()),
        };
        let out = with_firmware(legacy, &uefi_sb).expect("rewrites");
        let d = parse(&out).expect("parses");
        assert_eq!(d.firmware, uefi_sb);
        assert!(out.contains("<smm state='on'/>"));
        assert_eq!(
            d.boot_order,
            Vec::<String>::new(),
            "no devices, no ids; <boot dev> kept"
        );
        assert!(out.contains("<boot dev='hd'/>"));
        let back = FirmwareSettings {
            mode: BootMode::Legacy,
            secure_boot: false,
            serial_number: None,
            manufacturer: None,
            product_name: None,
        };
        let out2 = with_firmware(&out, &back).expect("rewrites");
        assert_eq!(parse(&out2).expect("parses").firmware, back);
        assert!(!out2.contains("sysinfo") && !out2.contains("firmware="));
        let bad = FirmwareSettings {
            secure_boot: true,
            ..back
        };
        assert!(with_firmware(legacy, &bad).is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("<notadomain/>").is_err());
        assert!(parse("<<<").is_err());
        assert!(parse("<domain><uuid>x</uuid></domain>").is_err());
    }

    #[test]
    fn units_convert_to_kib() {
        assert_eq!(to_kib(1, Some("GiB")), 1024 * 1024);
        assert_eq!(to_kib(2048, Some("b")), 2);
        assert_eq!(to_kib(7, None), 7);
    }

    #[test]
    fn reads_graphics_and_serial_consoles() {
        let xml = "<domain><name>c</name><uuid>u</uuid><devices>
            <serial type='pty'><target port='0'/></serial>
            <graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>
              <listen type='address' address='127.0.0.1'/></graphics>
            <graphics type='spice' port='-1' autoport='yes'><listen type='address' address='0.0.0.0'/></graphics>
            </devices></domain>";
        let d = parse(xml).expect("parses");
        assert!(d.consoles.serial);
        assert_eq!(
            d.consoles.vnc,
            Some(GraphicsListen {
                address: Some("127.0.0.1".into()),
                port: Some(5901)
            })
        );
        assert_eq!(
            d.consoles.spice,
            Some(GraphicsListen {
                address: Some("0.0.0.0".into()),
                port: None
            })
        );
        let socket = "<domain><name>c</name><uuid>u</uuid><devices>
            <graphics type='vnc' port='5900'><listen type='socket' socket='/run/x.sock'/></graphics>
            </devices></domain>";
        let d = parse(socket).expect("parses");
        assert_eq!(d.consoles.vnc.and_then(|g| g.port), None);
        assert!(!d.consoles.serial);
    }

    #[test]
    fn composed_domains_read_back_as_defined() {
        let s = crate::model::NewSystem {
            id: "3d0c56a4-6a0e-4b8f-9a51-0c1f5d0c9e21".into(),
            name: "web<1>".into(),
            vcpus: 2,
            memory_mib: 512,
            firmware: BootMode::UEFI,
            disks: vec![crate::model::NewDisk {
                path: "/p/web-1-disk0.qcow2".into(),
                format: crate::model::VolumeFormat::Qcow2,
            }],
            network: Some("default".into()),
            direct_boot: None,
            console_log: Some("/var/log/c/web-1.log".into()),
            host: None,
        };
        let xml = new_domain(&s, "qemu");
        let d = parse(&xml).expect("parses");
        assert_eq!(d.name, "web<1>");
        assert_eq!(d.uuid, s.id);
        assert_eq!((d.vcpus, d.memory_kib), (2, 512 * 1024));
        assert_eq!(d.firmware.mode, BootMode::UEFI);
        assert_eq!(d.drives[0].id, "vda");
        assert_eq!(d.drives[0].source.as_deref(), Some("/p/web-1-disk0.qcow2"));
        assert_eq!(d.drives[1].kind, DriveKind::Cdrom);
        // libvirt gives the NIC its MAC address when it defines the domain.
        assert!(xml.contains("<interface type='network'><source network='default'/>"));
        assert!(d.consoles.serial);
        assert!(xml.contains("<log file='/var/log/c/web-1.log' append='off'/>"));
        let kernel = crate::model::NewSystem {
            direct_boot: Some(crate::model::DirectBoot {
                kernel: "/k/vmlinuz".into(),
                initrd: Some("/k/initrd".into()),
                cmdline: Some("console=ttyS0".into()),
            }),
            network: Some(String::new()),
            firmware: BootMode::Legacy,
            ..s
        };
        let test_xml = new_domain(&kernel, "test");
        assert!(!test_xml.contains("<interface"));
        let d = parse(&test_xml).expect("parses");
        assert!(d.direct_kernel_boot);
        assert_eq!(d.firmware.mode, BootMode::Legacy);
        let stripped = without_disk(&new_domain(&kernel, "test"), "vda").expect("removes");
        assert!(!stripped.contains("web-1-disk0"));
    }
}
