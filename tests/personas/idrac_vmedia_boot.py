"""Ironic's idrac-redfish-virtual-media boot, through sushy's Dell extension:
power off, insert the ISO into the virtual CD, one-time boot from it through
ImportSystemConfiguration, power on. The caller checks what the guest booted.

usage: idrac_vmedia_boot.py BASE_URL USER PASSWORD ISO_URL
"""
import sys
import time

import sushy

base, user, password, iso = sys.argv[1:5]
root = sushy.Sushy(base, username=user, password=password, verify=False)
system = root.get_system('/redfish/v1/Systems/System.Embedded.1')
mgr = system.managers[0]
oem = mgr.get_oem_extension('Dell')
if system.power_state != sushy.POWER_STATE_OFF:
    system.reset_system(sushy.RESET_FORCE_OFF)
cd = [v for v in system.virtual_media.get_members() if sushy.VIRTUAL_MEDIA_CD in v.media_types][0]
if cd.inserted:
    cd.eject_media()
cd.insert_media(iso, inserted=True, write_protected=True)
end = time.time() + 120
while not cd.inserted:
    assert time.time() < end, 'the CD was not inserted'
    time.sleep(0.5)
    cd.refresh()
print('PASS inserted', cd.image, flush=True)
oem.set_virtual_boot_device(sushy.VIRTUAL_MEDIA_CD, persistent=False, manager=mgr, system=system)
system.refresh()
assert system.boot.target == sushy.BOOT_SOURCE_TARGET_CD and system.boot.enabled == sushy.BOOT_SOURCE_ENABLED_ONCE
print('PASS one-time CD boot set', flush=True)
system.reset_system(sushy.RESET_ON)
print('PASS powered on', flush=True)
