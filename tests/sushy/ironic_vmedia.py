#!/usr/bin/env python3
"""The Ironic virtual-media boot sequence, written with OpenStack's sushy client.

usage: ironic_vmedia.py BMC_URL USER PASSWORD SYSTEM_ID IMAGE_URL

Steps (as Ironic's redfish-virtual-media boot interface does them): power off,
insert the image into the CD slot, one-time boot from CD, power on, eject,
power off. After each step the resource is read back and must show what was
set. Exits 0 when every step passed; prints one line per step.
"""
import os
import sys
import time
import warnings

import sushy
from sushy.resources.manager.constants import VirtualMediaType
from sushy.resources.system.constants import BootSource, BootSourceOverrideEnabled

warnings.filterwarnings("ignore")  # self-signed certificate


def wait(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def step(name, fn):
    fn()
    print(f"PASS {name}", flush=True)


def main(url, user, password, system_id, image):
    auth = sushy.auth.SessionOrBasicAuth(username=user, password=password)
    root = sushy.Sushy(url + "/redfish/v1", verify=False, auth=auth)
    system = root.get_system("/redfish/v1/Systems/" + system_id)
    manager = system.managers[0]
    cds = [v for v in manager.virtual_media.get_members() if VirtualMediaType.CD in v.media_types]
    assert cds, "no CD virtual media slot"
    cd = cds[0]

    def power(target, expected):
        system.reset_system(target)

        def reached():
            system.refresh()
            return system.power_state == expected

        wait(f"power {expected}", reached)

    def power_off():
        power(sushy.ResetType.FORCE_OFF, sushy.PowerState.OFF)

    def insert():
        cd.insert_media(image, inserted=True, write_protected=True)

        def inserted():
            cd.refresh()
            return cd.inserted

        # The download runs as a task; the slot shows the image once attached.
        wait("image inserted", inserted)
        assert cd.image == image, cd.image

    def one_time_cd():
        system.set_system_boot_options(BootSource.CD, enabled=BootSourceOverrideEnabled.ONCE)
        system.refresh()
        assert system.boot.target == BootSource.CD, system.boot.target
        assert system.boot.enabled == BootSourceOverrideEnabled.ONCE, system.boot.enabled

    def power_on():
        power(sushy.ResetType.ON, sushy.PowerState.ON)

        def consumed():
            system.refresh()
            return system.boot.enabled == BootSourceOverrideEnabled.DISABLED

        # The one-time override is used by this boot and then reverts.
        wait("one-time boot consumed", consumed)

    def booted_from_cd():
        # Ironic ejects once the deployment ramdisk has come up; the test
        # stands in for that with the guest's serial console, when given.
        log = os.environ.get("REDFIN_GUEST_SERIAL_LOG")
        if log:
            def seen():
                try:
                    with open(log, "rb") as f:
                        return b"REDFIN-GUEST-BOOTED source=cdrom" in f.read()
                except OSError:
                    return False

            wait("the guest to boot from the CD", seen, timeout=120)

    def eject():
        cd.eject_media()
        cd.refresh()
        assert not cd.inserted, "still inserted"
        assert cd.image is None, cd.image

    step("power off", power_off)
    step("insert virtual media", insert)
    step("one-time boot from CD", one_time_cd)
    step("power on", power_on)
    step("guest booted the image", booted_from_cd)
    step("eject virtual media", eject)
    step("power off", power_off)
    print("sushy: Ironic virtual-media sequence passed")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__)
        sys.exit(2)
    main(*sys.argv[1:])
