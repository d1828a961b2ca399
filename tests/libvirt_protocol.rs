//! bmcd's own libvirt client (libvirt's RPC protocol over a UNIX socket,
//! `bmcd/src/libvirt/wire.rs`) against a real, private libvirtd: the test
//! driver hosted in the daemon, reached as `test+unix:///default?socket=…`.
//! Reads, power changes, events (bmcd's own and another client's), storage,
//! errors, and a daemon that goes away and comes back.

use std::time::Duration;

use bmcd::libvirt::LibvirtHypervisor;
use bmcd::model::{
    Hypervisor, HypervisorError, LifecycleEvent, NewVolume, PowerState, ResetType, SystemEvent, VolumeFormat,
};
use redfin_tests::e2e::Libvirtd;
use redfin_tests::TempDir;
use tokio::sync::broadcast;

async fn next_event(rx: &mut broadcast::Receiver<SystemEvent>, id: &str, want: LifecycleEvent) {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.system_id == id && ev.event == want => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no {want:?} event for {id} within 10 s"));
}

fn one_mib_volume() -> NewVolume {
    NewVolume {
        name: "protocol.img".into(),
        capacity_bytes: 1 << 20,
        format: VolumeFormat::Raw,
        backing: None,
    }
}

async fn open(uri: String) -> Result<LibvirtHypervisor, HypervisorError> {
    tokio::task::spawn_blocking(move || LibvirtHypervisor::open(&uri, 2, Duration::from_secs(20)))
        .await
        .expect("open task")
}

#[tokio::test]
async fn the_protocol_client_drives_a_daemon_hosted_test_driver() {
    let work = TempDir::new("libvirt-protocol");
    let daemon_dir = work.path().join("libvirtd");
    let lv = Libvirtd::start(&daemon_dir).await;
    let socket = daemon_dir.join("run/libvirt/libvirt-sock");
    let uri = format!("test+unix:///default?socket={}", socket.display());

    let hv = open(uri.clone()).await.expect("opens");
    assert_eq!(
        hv.client(),
        "protocol",
        "a daemon URI is served without libvirt.so"
    );
    hv.ping().await.expect("ping");

    // Reads.
    let systems = hv.list_systems().await.expect("lists");
    let test = systems
        .iter()
        .find(|s| s.name == "test")
        .expect("the test domain");
    let id = test.id.clone();
    let sys = hv.system(id.clone()).await.expect("reads");
    assert_eq!(sys.name, "test");
    assert_eq!(sys.power_state, PowerState::On);
    assert!(sys.memory_mib > 0 && sys.processor_count > 0);
    // A plain read leaves drive capacities out (a round trip per drive);
    // the storage resources' read asks libvirt for them (`virsh domblkinfo
    // test vda` on test:///default: 1,099,506,450,432 bytes).
    let vda = |s: &bmcd::model::ComputerSystem| {
        s.drives
            .iter()
            .find(|d| d.id == "vda")
            .expect("vda")
            .capacity_bytes
    };
    assert_eq!(vda(&sys), None);
    let with = hv.system_with_capacities(id.clone()).await.expect("reads");
    assert_eq!(vda(&with), Some(1_099_506_450_432));
    assert_eq!(with.boot_order, sys.boot_order);
    assert_eq!(
        hv.system_id_by_name("test".into())
            .await
            .expect("by name")
            .as_deref(),
        Some(id.as_str())
    );
    assert_eq!(hv.system_id_by_name("nope".into()).await.expect("by name"), None);
    let missing = hv.system("00000000-0000-4000-8000-000000000000".into()).await;
    assert!(
        matches!(missing, Err(HypervisorError::SystemNotFound(_))),
        "{missing:?}"
    );
    let stats = hv.statistics().await.expect("statistics");
    assert!(stats
        .iter()
        .any(|s| s.id == id && s.vcpus > 0 && s.memory_kib > 0));
    let cap = hv.capacity().await.expect("capacity");
    assert!(cap.cpus > 0 && cap.memory_mib > 0 && cap.systems >= 1);

    // Power changes made by bmcd, each seen as an event from the daemon.
    let mut events = hv.events();
    hv.reset(id.clone(), ResetType::ForceOff)
        .await
        .expect("force off");
    next_event(&mut events, &id, LifecycleEvent::Stopped).await;
    assert_eq!(
        hv.system(id.clone()).await.expect("reads").power_state,
        PowerState::Off
    );
    let refused = hv.reset(id.clone(), ResetType::GracefulRestart).await;
    assert!(
        matches!(refused, Err(HypervisorError::InvalidTransition { .. })),
        "{refused:?}"
    );
    hv.reset(id.clone(), ResetType::On).await.expect("on");
    next_event(&mut events, &id, LifecycleEvent::Started).await;
    hv.reset(id.clone(), ResetType::ForceRestart)
        .await
        .expect("force restart");
    assert_eq!(
        hv.system(id.clone()).await.expect("reads").power_state,
        PowerState::On
    );

    // A change made by another client of the daemon reaches bmcd as an event.
    let other = format!("test+unix:///default?socket={}", socket.display());
    redfin_tests::e2e::run(
        tokio::process::Command::new("virsh").args(["-q", "-c", &other, "destroy", "test"]),
    )
    .await;
    next_event(&mut events, &id, LifecycleEvent::Stopped).await;
    assert_eq!(
        hv.system(id.clone()).await.expect("reads").power_state,
        PowerState::Off
    );

    // Storage: the test driver's pool, a volume made, read and deleted.
    let pools = hv.storage_pools().await.expect("pools");
    let pool = pools
        .iter()
        .find(|p| p.active)
        .expect("an active pool")
        .id
        .clone();
    let made = hv
        .create_volume(pool.clone(), one_mib_volume())
        .await
        .expect("creates a volume");
    assert_eq!(made.capacity_bytes, 1 << 20);
    let listed = hv.volumes(pool.clone()).await.expect("volumes");
    assert!(listed.iter().any(|v| v.id == "protocol.img"), "{listed:?}");
    let again = hv.create_volume(pool.clone(), one_mib_volume()).await;
    assert!(
        matches!(again, Err(HypervisorError::AlreadyExists(..))),
        "{again:?}"
    );
    hv.delete_volume(pool.clone(), "protocol.img".into())
        .await
        .expect("deletes");
    let gone = hv.volume(pool.clone(), "protocol.img".into()).await;
    assert!(matches!(gone, Err(HypervisorError::NotFound(..))), "{gone:?}");
    let no_pool = hv.volumes("no-such-pool".into()).await;
    assert!(
        matches!(no_pool, Err(HypervisorError::NotFound(..))),
        "{no_pool:?}"
    );

    // The daemon goes: calls answer "unavailable", not hang; it comes back:
    // the connection is made again, events included.
    drop(lv);
    let down = tokio::time::timeout(Duration::from_secs(30), hv.system(id.clone()))
        .await
        .expect("answers while the daemon is down");
    assert!(matches!(down, Err(HypervisorError::Unavailable(_))), "{down:?}");
    let lv = Libvirtd::start(&daemon_dir).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if hv.ping().await.is_ok() && hv.system(id.clone()).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconnection within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut events = hv.events();
    // The daemon's fresh test driver runs "test" again.
    hv.reset(id.clone(), ResetType::ForceOff)
        .await
        .expect("force off after the restart");
    next_event(&mut events, &id, LifecycleEvent::Stopped).await;
    drop(lv);
}

#[tokio::test]
async fn unusable_daemon_uris_are_refused_with_the_reason() {
    let work = TempDir::new("libvirt-protocol-refusals");
    let missing = work.path().join("no-such-sock");
    let err = open(format!("qemu:///system?socket={}", missing.display()))
        .await
        .err()
        .expect("no daemon there");
    let HypervisorError::Unavailable(msg) = err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("no-such-sock"), "names the socket: {msg}");
    let err = open("qemu:///system?no_verify=1".into())
        .await
        .err()
        .expect("unknown parameter");
    assert!(format!("{err:?}").contains("no_verify"), "{err:?}");
}
