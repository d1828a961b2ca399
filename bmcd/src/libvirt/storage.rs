//! Storage pools and volumes, and systems defined from scratch (composition):
//! the libvirt side of [`crate::model::StoragePool`], [`crate::model::Volume`]
//! and [`crate::model::NewSystem`]. Runs on the libvirt worker threads only.

use super::client::{codes, flags, Connect, StoragePool as Pool, StorageVol};

use super::{domain_xml, lookup, map_err, parse_xml, run_state};
use crate::model::{HypervisorError, NewDisk, NewSystem, NewVolume, StoragePool, Volume, VolumeFormat};

/// Storage errors in Redfish terms: a missing pool or volume is a 404, a
/// volume name taken a 409.
fn storage_err(e: super::client::Error, pool: &str, volume: Option<&str>) -> HypervisorError {
    match e.code() {
        codes::NO_STORAGE_POOL => HypervisorError::NotFound("Storage", pool.to_owned()),
        codes::NO_STORAGE_VOL => HypervisorError::NotFound("Volume", volume.unwrap_or_default().to_owned()),
        codes::STORAGE_VOL_EXIST => {
            HypervisorError::AlreadyExists("Volume", volume.unwrap_or_default().to_owned())
        }
        _ => map_err(e, pool),
    }
}

fn pool_by_name(conn: &Connect, name: &str) -> Result<Pool, HypervisorError> {
    conn.lookup_storage_pool_by_name(name)
        .map_err(|e| storage_err(e, name, None))
}

fn read_pool(pool: &Pool) -> Result<StoragePool, super::client::Error> {
    let name = pool.name()?;
    let info = pool.info()?;
    let path = pool
        .xml_desc(0)
        .ok()
        .and_then(|xml| xml_text(&xml, &["target", "path"]));
    Ok(StoragePool {
        id: name,
        active: pool.is_active().unwrap_or(false),
        capacity_bytes: info.capacity,
        allocation_bytes: info.allocation,
        available_bytes: info.available,
        path,
    })
}

/// The text of the element at `path` below the root element.
fn xml_text(xml: &str, path: &[&str]) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let mut node = doc.root_element();
    for name in path {
        node = node.children().find(|c| c.has_tag_name(*name))?;
    }
    node.text().map(|t| t.trim().to_owned())
}

/// An attribute of the element at `path` below the root element.
fn xml_attr(xml: &str, path: &[&str], attr: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let mut node = doc.root_element();
    for name in path {
        node = node.children().find(|c| c.has_tag_name(*name))?;
    }
    node.attribute(attr).map(str::to_owned)
}

fn read_volume(pool: &str, vol: &StorageVol) -> Result<Volume, super::client::Error> {
    let name = vol.name()?;
    let info = vol.info()?;
    let xml = vol.xml_desc(0)?;
    Ok(Volume {
        id: name,
        pool: pool.to_owned(),
        capacity_bytes: info.capacity,
        allocation_bytes: info.allocation,
        format: xml_attr(&xml, &["target", "format"], "type").and_then(|f| VolumeFormat::parse(&f)),
        path: vol.path()?,
        backing_path: xml_text(&xml, &["backingStore", "path"]).filter(|p| !p.is_empty()),
    })
}

pub fn storage_pools(conn: &Connect) -> Result<Vec<StoragePool>, HypervisorError> {
    let pools = conn.list_all_storage_pools(0).map_err(|e| map_err(e, ""))?;
    let mut out: Vec<StoragePool> = pools.iter().filter_map(|p| read_pool(p).ok()).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

pub fn volumes(conn: &Connect, pool: &str) -> Result<Vec<Volume>, HypervisorError> {
    let p = pool_by_name(conn, pool)?;
    let _ = p.refresh(0);
    let vols = p.list_all_volumes(0).map_err(|e| storage_err(e, pool, None))?;
    // A volume deleted between the listing and its read is skipped.
    let mut out: Vec<Volume> = vols.iter().filter_map(|v| read_volume(pool, v).ok()).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn vol_by_name(p: &Pool, pool: &str, name: &str) -> Result<StorageVol, HypervisorError> {
    p.lookup_storage_vol_by_name(name)
        .map_err(|e| storage_err(e, pool, Some(name)))
}

pub fn volume(conn: &Connect, pool: &str, name: &str) -> Result<Volume, HypervisorError> {
    let p = pool_by_name(conn, pool)?;
    let v = vol_by_name(&p, pool, name)?;
    read_volume(pool, &v).map_err(|e| storage_err(e, pool, Some(name)))
}

/// The `<volume>` document for a new volume.
pub fn volume_xml(v: &NewVolume) -> String {
    let backing = v
        .backing
        .as_ref()
        .map(|(path, format)| {
            format!(
                "<backingStore><path>{}</path><format type='{}'/></backingStore>",
                domain_xml::xml_escape(path),
                format.as_str()
            )
        })
        .unwrap_or_default();
    format!(
        "<volume><name>{}</name><capacity unit='bytes'>{}</capacity><allocation unit='bytes'>0</allocation>\
         <target><format type='{}'/></target>{backing}</volume>",
        domain_xml::xml_escape(&v.name),
        v.capacity_bytes,
        v.format.as_str()
    )
}

pub fn create_volume(conn: &Connect, pool: &str, v: &NewVolume) -> Result<Volume, HypervisorError> {
    let p = pool_by_name(conn, pool)?;
    if p.lookup_storage_vol_by_name(&v.name).is_ok() {
        return Err(HypervisorError::AlreadyExists("Volume", v.name.clone()));
    }
    let vol = p
        .create_volume(&volume_xml(v), 0)
        .map_err(|e| storage_err(e, pool, Some(&v.name)))?;
    read_volume(pool, &vol).map_err(|e| storage_err(e, pool, Some(&v.name)))
}

/// Grows a volume. A volume that a running system has open is grown through
/// that system's QEMU (block resize), which the guest sees at once; the
/// storage driver would fail on the image QEMU holds locked.
pub fn resize_volume(conn: &Connect, pool: &str, name: &str, capacity: u64) -> Result<(), HypervisorError> {
    let p = pool_by_name(conn, pool)?;
    let v = vol_by_name(&p, pool, name)?;
    let path = v.path().map_err(|e| storage_err(e, pool, Some(name)))?;
    let running = conn
        .list_all_domains(flags::LIST_DOMAINS_ACTIVE)
        .map_err(|e| map_err(e, ""))?;
    for dom in running {
        let Ok(desc) = dom.xml_desc(0).map(|x| domain_xml::parse(&x)) else {
            continue;
        };
        let Ok(desc) = desc else { continue };
        if let Some(d) = desc
            .drives
            .iter()
            .find(|d| d.source.as_deref() == Some(path.as_str()))
        {
            return dom
                .block_resize(&d.id, capacity, flags::BLOCK_RESIZE_BYTES)
                .map_err(|e| map_err(e, &desc.uuid));
        }
    }
    v.resize(capacity, 0)
        .map_err(|e| storage_err(e, pool, Some(name)))
}

/// Systems whose stored or live definition holds a disk at `path`.
fn holders(conn: &Connect, path: &str) -> Result<Vec<String>, HypervisorError> {
    let mut names = Vec::new();
    for dom in conn.list_all_domains(0).map_err(|e| map_err(e, ""))? {
        let mut xmls = Vec::new();
        if let Ok(x) = dom.xml_desc(0) {
            xmls.push(x);
        }
        if let Ok(x) = dom.xml_desc(flags::XML_INACTIVE) {
            xmls.push(x);
        }
        let holds = xmls.iter().any(|x| {
            domain_xml::parse(x)
                .map(|d| d.drives.iter().any(|dr| dr.source.as_deref() == Some(path)))
                .unwrap_or(false)
        });
        if holds {
            names.push(dom.name().unwrap_or_default());
        }
    }
    Ok(names)
}

pub fn delete_volume(conn: &Connect, pool: &str, name: &str) -> Result<(), HypervisorError> {
    let p = pool_by_name(conn, pool)?;
    let v = vol_by_name(&p, pool, name)?;
    let path = v.path().map_err(|e| storage_err(e, pool, Some(name)))?;
    let users = holders(conn, &path)?;
    if !users.is_empty() {
        return Err(HypervisorError::InUse(format!(
            "volume {name} is a disk of system {}; detach it first",
            users.join(", ")
        )));
    }
    // Overlays made from this volume would lose their data.
    for other in p.list_all_volumes(0).map_err(|e| storage_err(e, pool, None))? {
        if let Ok(o) = read_volume(pool, &other) {
            if o.backing_path.as_deref() == Some(path.as_str()) {
                return Err(HypervisorError::InUse(format!(
                    "volume {name} is the base of the copy-on-write volume {}",
                    o.id
                )));
            }
        }
    }
    v.delete(0).map_err(|e| storage_err(e, pool, Some(name)))
}

/// The first `vdX` name free in the system's definitions.
fn free_virtio_target(used: &[String]) -> Option<String> {
    ('a'..='z').map(|c| format!("vd{c}")).find(|t| !used.contains(t))
}

pub fn attach_volume(conn: &Connect, id: &str, disk: &NewDisk) -> Result<String, HypervisorError> {
    let dom = lookup(conn, id)?;
    let active = dom.is_active().map_err(|e| map_err(e, id))?;
    let persistent = dom.is_persistent().map_err(|e| map_err(e, id))?;
    let live = parse_xml(&dom.xml_desc(0).map_err(|e| map_err(e, id))?)?;
    let stored_xml = dom
        .xml_desc(flags::XML_INACTIVE | flags::XML_SECURE)
        .map_err(|e| map_err(e, id))?;
    let stored = parse_xml(&stored_xml)?;
    if live
        .drives
        .iter()
        .chain(&stored.drives)
        .any(|d| d.source.as_deref() == Some(disk.path.as_str()))
    {
        return Err(HypervisorError::InUse(format!(
            "the volume is attached to this system already ({})",
            disk.path
        )));
    }
    let others = holders(conn, &disk.path)?;
    if !others.is_empty() {
        return Err(HypervisorError::InUse(format!(
            "the volume is a disk of system {}; detach it there first",
            others.join(", ")
        )));
    }
    let used: Vec<String> = live
        .drives
        .iter()
        .chain(&stored.drives)
        .map(|d| d.id.clone())
        .collect();
    let target =
        free_virtio_target(&used).ok_or_else(|| HypervisorError::Failed("no free disk name left".into()))?;
    let element = domain_xml::volume_disk(&target, disk);
    let mut flags = 0;
    if active {
        flags |= flags::AFFECT_LIVE;
    }
    if persistent {
        flags |= flags::AFFECT_CONFIG;
    }
    if let Err(e) = dom.attach_device_flags(&element, flags) {
        // A driver without device attachment (libvirt's test driver) can
        // still take the whole definition when nothing runs.
        let unsupported = matches!(map_err(e.clone(), id), HypervisorError::Unsupported(_));
        if !(unsupported && !active && persistent) {
            return Err(map_err(e, id));
        }
        let new = domain_xml::with_device(&stored_xml, &element)
            .map_err(|e| HypervisorError::Failed(e.to_string()))?;
        conn.define_domain_xml(&new).map_err(|e| map_err(e, id))?;
    }
    Ok(target)
}

pub fn define_system(conn: &Connect, s: &NewSystem) -> Result<(), HypervisorError> {
    let xml = domain_xml::new_domain(s, &domain_type(conn));
    conn.define_domain_xml(&xml).map_err(|e| map_err(e, &s.id))?;
    Ok(())
}

/// `test` on libvirt's test driver, `qemu` (TCG, which works everywhere)
/// otherwise; KVM acceleration is the host's to choose through the domain's
/// definition afterwards.
fn domain_type(conn: &Connect) -> String {
    match conn.driver_type() {
        Ok(t) if t.eq_ignore_ascii_case("test") => "test".to_owned(),
        _ => "qemu".to_owned(),
    }
}

pub fn undefine_system(conn: &Connect, id: &str) -> Result<(), HypervisorError> {
    let dom = lookup(conn, id)?;
    let state = run_state(&dom, id)?;
    if !matches!(
        state,
        super::reset_plan::RunState::ShutOff
            | super::reset_plan::RunState::Crashed
            | super::reset_plan::RunState::NoState
    ) {
        return Err(HypervisorError::InUse(
            "the system is powered on; turn it off (ComputerSystem.Reset ForceOff) before deleting it".into(),
        ));
    }
    match dom.undefine_flags(flags::UNDEFINE_NVRAM) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.code(), codes::INVALID_ARG | codes::NO_SUPPORT) => {
            dom.undefine().map_err(|e| map_err(e, id))
        }
        Err(e) => Err(map_err(e, id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_documents_escape_names_and_carry_the_backing_store() {
        let xml = volume_xml(&NewVolume {
            name: "a<b>.qcow2".into(),
            capacity_bytes: 1 << 20,
            format: VolumeFormat::Qcow2,
            backing: Some(("/p/base.raw".into(), VolumeFormat::Raw)),
        });
        assert!(xml.contains("<name>a&lt;b&gt;.qcow2</name>"));
        assert!(xml.contains("<backingStore><path>/p/base.raw</path><format type='raw'/></backingStore>"));
        assert_eq!(
            xml_attr(&xml, &["target", "format"], "type").as_deref(),
            Some("qcow2")
        );
    }

    #[test]
    fn virtio_targets_skip_used_names() {
        assert_eq!(
            free_virtio_target(&["vda".into(), "sda".into()]).as_deref(),
            Some("vdb")
        );
    }
}
