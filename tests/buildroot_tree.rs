//! The Buildroot BR2_EXTERNAL tree (image/buildroot/) agrees with the board files that
//! image/build.sh uses: partitions (names, order, sizes, types, file systems, labels) in
//! genimage.cfg equal board/qemu-x86_64/partitions.txt; every file the defconfig names exists;
//! every package it enables is ours (and complete) or a known Buildroot package; the kernel
//! command line is board/qemu-x86_64/cmdline.txt's; GRUB's bank partitions are root-a and
//! root-b. No Buildroot is needed (it cannot be downloaded here): these are file checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(top().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

const EXTERNAL: &str = "image/buildroot";
const BOARD: &str = "board/qemu-x86_64";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Partition {
    name: String,
    size_mib: u64,
    /// `esp` or `linux`
    kind: String,
    fs: String,
    label: String,
}

fn partitions_txt() -> Vec<Partition> {
    read(&format!("{BOARD}/partitions.txt"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 6, "partitions.txt line: {l}");
            Partition {
                name: f[0].to_owned(),
                size_mib: f[1].parse().expect("size"),
                kind: f[2].to_owned(),
                fs: f[3].to_owned(),
                label: f[4].to_owned(),
            }
        })
        .collect()
}

/// A genimage section: `kind name { key = value ... child { ... } }`.
#[derive(Debug, Default)]
struct Section {
    kind: String,
    name: String,
    values: BTreeMap<String, String>,
    children: Vec<Section>,
}

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                c if c.is_whitespace() => {}
                '{' | '}' | '=' => out.push(c.to_string()),
                '"' => {
                    let mut s = String::from("\"");
                    for c in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        s.push(c);
                    }
                    out.push(s);
                }
                c => {
                    let mut s = c.to_string();
                    while let Some(&n) = chars.peek() {
                        if n.is_whitespace() || "{}=\"".contains(n) {
                            break;
                        }
                        s.push(n);
                        chars.next();
                    }
                    out.push(s);
                }
            }
        }
    }
    out
}

fn parse_body(t: &[String], i: &mut usize) -> Section {
    let mut s = Section::default();
    while *i < t.len() && t[*i] != "}" {
        let key = t[*i].clone();
        *i += 1;
        if t.get(*i).map(String::as_str) == Some("=") {
            *i += 1;
            if t[*i] == "{" {
                // a list: { "a" "b" }
                *i += 1;
                let mut items = Vec::new();
                while t[*i] != "}" {
                    items.push(t[*i].trim_start_matches('"').to_owned());
                    *i += 1;
                }
                *i += 1;
                s.values.insert(key, items.join(" "));
            } else {
                s.values.insert(key, t[*i].trim_start_matches('"').to_owned());
                *i += 1;
            }
        } else {
            // child section: kind [name] { ... }
            let mut name = String::new();
            if t[*i] != "{" {
                name = t[*i].trim_start_matches('"').to_owned();
                *i += 1;
            }
            assert_eq!(t[*i], "{", "genimage.cfg: expected {{ after {key}");
            *i += 1;
            let mut child = parse_body(t, i);
            *i += 1; // }
            child.kind = key;
            child.name = name;
            s.children.push(child);
        }
    }
    s
}

fn genimage() -> Section {
    let t = tokens(&read(&format!("{EXTERNAL}/{BOARD}/genimage.cfg")));
    let mut i = 0;
    parse_body(&t, &mut i)
}

fn mib(v: &str) -> u64 {
    v.strip_suffix('M')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("size '{v}' is not in MiB (NM)"))
}

#[test]
fn genimage_layout_equals_partitions_txt() {
    let want = partitions_txt();
    let root = genimage();
    let images: BTreeMap<&str, &Section> = root
        .children
        .iter()
        .filter(|s| s.kind == "image")
        .map(|s| (s.name.as_str(), s))
        .collect();
    let disk = images
        .get("redfin.img")
        .expect("image redfin.img in genimage.cfg");
    let hd = disk
        .children
        .iter()
        .find(|c| c.kind == "hdimage")
        .expect("hdimage");
    assert_eq!(
        hd.values.get("partition-table-type").map(String::as_str),
        Some("gpt")
    );
    let parts: Vec<&Section> = disk.children.iter().filter(|c| c.kind == "partition").collect();
    assert_eq!(
        parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        want.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        "partition names and order"
    );
    // The first partition starts at 1 MiB, as image/lib/disk.sh writes it.
    assert_eq!(parts[0].values.get("offset").map(String::as_str), Some("1M"));
    for (p, w) in parts.iter().zip(&want) {
        assert_eq!(mib(&p.values["size"]), w.size_mib, "size of {}", w.name);
        let type_uuid = match w.kind.as_str() {
            "esp" => "U",
            "linux" => "L",
            other => panic!("unknown type {other}"),
        };
        assert_eq!(p.values["partition-type-uuid"], type_uuid, "type of {}", w.name);
        let image = images
            .get(p.values["image"].as_str())
            .unwrap_or_else(|| panic!("no image {} for {}", p.values["image"], w.name));
        assert_eq!(mib(&image.values["size"]), w.size_mib, "image size of {}", w.name);
        let fs = image
            .children
            .iter()
            .find(|c| c.kind == "vfat" || c.kind == "ext4")
            .unwrap_or_else(|| panic!("no file system for {}", w.name));
        assert_eq!(fs.kind, w.fs, "file system of {}", w.name);
        assert_eq!(fs.values["label"], w.label, "label of {}", w.name);
    }
}

/// `KEY=value` lines of the defconfig (quotes removed).
fn defconfig() -> BTreeMap<String, String> {
    read(&format!("{EXTERNAL}/configs/redfin_qemu_x86_64_defconfig"))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("defconfig line: {l}"));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

#[test]
fn external_tree_is_complete() {
    let desc = read(&format!("{EXTERNAL}/external.desc"));
    assert!(
        desc.lines().any(|l| l == "name: REDFIN"),
        "external.desc names REDFIN"
    );
    let config_in = read(&format!("{EXTERNAL}/Config.in"));
    let mk = read(&format!("{EXTERNAL}/external.mk"));
    assert!(mk.contains("$(BR2_EXTERNAL_REDFIN_PATH)/package/*/*.mk"));
    for entry in std::fs::read_dir(top().join(EXTERNAL).join("package")).expect("package/") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
        let symbol = format!("BR2_PACKAGE_{}", name.to_uppercase().replace('-', "_"));
        let pkg_config = std::fs::read_to_string(dir.join("Config.in")).expect("package Config.in");
        assert!(
            pkg_config.contains(&format!("config {symbol}")),
            "{name}/Config.in defines {symbol}"
        );
        let pkg_mk = std::fs::read_to_string(dir.join(format!("{name}.mk"))).expect("package .mk");
        let var = name.to_uppercase().replace('-', "_");
        assert!(pkg_mk.contains(&format!("{var}_VERSION")) && pkg_mk.contains("$(eval $(cargo-package))"));
        assert!(
            config_in.contains(&format!("$BR2_EXTERNAL_REDFIN_PATH/package/{name}/Config.in")),
            "Config.in sources {name}"
        );
    }
}

#[test]
fn defconfig_names_files_and_packages_that_exist() {
    let config = defconfig();
    let external = top().join(EXTERNAL);
    let mut files = 0;
    for (key, value) in &config {
        for word in value.split_whitespace() {
            if let Some(rel) = word.strip_prefix("$(BR2_EXTERNAL_REDFIN_PATH)/") {
                let path = external.join(rel);
                assert!(path.exists(), "{key}: {} does not exist", path.display());
                files += 1;
            }
        }
    }
    assert!(
        files >= 5,
        "the defconfig names its overlay, scripts and board files"
    );
    // Packages: ours must exist here, the others are Buildroot's (a typo fails).
    const BUILDROOT: &[&str] = &[
        "BR2_PACKAGE_HOST_GENIMAGE",
        "BR2_PACKAGE_HOST_DOSFSTOOLS",
        "BR2_PACKAGE_HOST_MTOOLS",
        "BR2_PACKAGE_HOST_E2FSPROGS",
        "BR2_PACKAGE_HOST_GRUB2",
        "BR2_PACKAGE_LIBVIRT",
    ];
    for key in config.keys().filter(|k| k.starts_with("BR2_PACKAGE_")) {
        if BUILDROOT.contains(&key.as_str()) {
            continue;
        }
        let dir = key
            .trim_start_matches("BR2_PACKAGE_")
            .to_lowercase()
            .replace('_', "-");
        assert!(
            external.join("package").join(&dir).join("Config.in").exists(),
            "{key}: no package/{dir} in the external tree"
        );
    }
    assert_eq!(config.get("BR2_PACKAGE_BMCD").map(String::as_str), Some("y"));
    // The overlay is the image's own.
    assert_eq!(
        config["BR2_ROOTFS_OVERLAY"],
        "$(BR2_EXTERNAL_REDFIN_PATH)/../../overlays/common"
    );
    // GRUB gets the modules image/lib/disk.sh builds in.
    let disk_sh = read("image/lib/disk.sh");
    for module in config["BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI"].split_whitespace() {
        assert!(
            disk_sh.contains(module),
            "GRUB module {module} is not in image/lib/disk.sh"
        );
    }
}

#[test]
fn kernel_command_line_and_banks_match_the_board() {
    let cmdline = read(&format!("{BOARD}/cmdline.txt"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let post_image = read(&format!("{EXTERNAL}/{BOARD}/post-image.sh"));
    assert!(
        post_image.contains("\"$BOARD_DIR/cmdline.txt\""),
        "post-image.sh reads cmdline.txt"
    );
    assert!(
        post_image.contains("\"$BOARD_DIR/grub.cfg\""),
        "post-image.sh installs the board's grub.cfg"
    );
    assert!(post_image.contains("board/qemu-x86_64"));
    // No other kernel command line anywhere in the tree.
    for entry in walk(&top().join(EXTERNAL)) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("console=")) {
            assert!(
                line.contains(&cmdline),
                "{}: a command line other than cmdline.txt: {line}",
                entry.display()
            );
        }
    }
    // GRUB addresses the banks by partition number: root-a is the 2nd, root-b the 3rd.
    let names: Vec<String> = partitions_txt().into_iter().map(|p| p.name).collect();
    assert_eq!(names.iter().position(|n| n == "root-a"), Some(1));
    assert_eq!(names.iter().position(|n| n == "root-b"), Some(2));
    let grub = read(&format!("{BOARD}/grub.cfg"));
    assert!(grub.contains("linux ($redfin_disk,gpt2)/boot/vmlinuz @CMDLINE@ redfin.bank=a"));
    assert!(grub.contains("linux ($redfin_disk,gpt3)/boot/vmlinuz @CMDLINE@ redfin.bank=b"));
    // The image's bmcd finds the banks by the same GPT names.
    let toml = read("overlays/common/etc/bmcd/bmcd.toml");
    assert!(toml.contains("bank-a = \"partlabel:root-a\"") && toml.contains("bank-b = \"partlabel:root-b\""));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
