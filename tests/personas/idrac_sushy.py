"""Drives the iDRAC 9 persona with sushy and its Dell OEM extension, the way
Ironic's idrac-redfish-virtual-media boot and BIOS apply do.

Works with sushy's built-in Dell extension (sushy.oem.dell) and with
sushy-oem-idrac when that is installed (it takes over the 'dell' entry point).
Prints one PASS line per checked step; any failure raises and exits non-zero.

usage: idrac_sushy.py BASE_URL USER PASSWORD ISO_URL
"""
import sys

import sushy

from common import ok, wait

base, user, password, iso = sys.argv[1:5]
SYSTEM = '/redfish/v1/Systems/System.Embedded.1'


root = sushy.Sushy(base, username=user, password=password, verify=False)
assert root.json['Vendor'] == 'Dell', root.json.get('Vendor')
system = root.get_system(SYSTEM)
ok('connect with a session and find ' + SYSTEM)

mgr = system.managers[0]
assert mgr.identity == 'iDRAC.Embedded.1', mgr.identity
assert mgr.model.startswith('15G'), mgr.model
assert mgr.firmware_version.split('.')[0] in ('6', '7'), mgr.firmware_version
oem = mgr.get_oem_extension('Dell')
print('INFO Dell extension from', type(oem).__module__, flush=True)
ok('manager is an iDRAC 9 with firmware ' + mgr.firmware_version)

assert oem.lifecycle_service.is_idrac_ready()
ok('lifecycle controller ready')
oem.job_service.delete_jobs(job_ids=['JID_CLEARALL'])
assert oem.job_collection.get_unfinished_jobs() == []
ok('job queue cleared')

if system.power_state != sushy.POWER_STATE_OFF:
    system.reset_system(sushy.RESET_FORCE_OFF)
wait(lambda: system.refresh() or system.power_state == sushy.POWER_STATE_OFF, 'power off')
ok('power off')

cds = [v for v in system.virtual_media.get_members() if sushy.VIRTUAL_MEDIA_CD in v.media_types]
assert cds, 'no CD slot'
cd = cds[0]
if cd.inserted:
    cd.eject_media()
cd.insert_media(iso, inserted=True, write_protected=True)
wait(lambda: cd.refresh() or cd.inserted, 'the CD to be inserted', 60)
assert cd.image == iso, cd.image
ok('insert virtual media into ' + cd.path)

oem.set_virtual_boot_device(sushy.VIRTUAL_MEDIA_CD, persistent=False, manager=mgr, system=system)
system.refresh()
assert system.boot.target == sushy.BOOT_SOURCE_TARGET_CD, system.boot.target
assert system.boot.enabled == sushy.BOOT_SOURCE_ENABLED_ONCE, system.boot.enabled
ok('one-time virtual CD boot through ImportSystemConfiguration')

system.reset_system(sushy.RESET_ON)
wait(lambda: system.refresh() or system.power_state == sushy.POWER_STATE_ON, 'power on')
ok('power on')

# Ironic's clean-up: power off, then eject.
system.reset_system(sushy.RESET_FORCE_OFF)
wait(lambda: system.refresh() or system.power_state == sushy.POWER_STATE_OFF, 'power off')
cd.eject_media()
cd.refresh()
assert not cd.inserted and not cd.image_name, (cd.inserted, cd.image_name)
ok('eject virtual media')

bios = system.bios
assert sushy.APPLY_TIME_ON_RESET in (bios.supported_apply_times or []), bios.supported_apply_times
bios.set_attributes({'SystemSerialNumber': 'DELL-SN-42'}, apply_time=sushy.APPLY_TIME_ON_RESET)
unfinished = oem.job_collection.get_unfinished_jobs()
assert len(unfinished) == 1, unfinished
ok('BIOS change scheduled as job ' + unfinished[0])
system.reset_system(sushy.RESET_ON)
wait(lambda: bios.refresh() or bios.attributes.get('SystemSerialNumber') == 'DELL-SN-42', 'the BIOS job to apply')
assert bios.pending_attributes == {}, bios.pending_attributes
assert oem.job_collection.get_unfinished_jobs() == []
ok('BIOS job applied at the power-on')

system.reset_system(sushy.RESET_FORCE_OFF)
wait(lambda: system.refresh() or system.power_state == sushy.POWER_STATE_OFF, 'power off')
ok('power off at the end')
