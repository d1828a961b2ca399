"""Drives the iLO 5 persona with proliantutils' Redfish operations (Ironic's
ilo5 hardware type): power, one-time boot, virtual media, BIOS, boot mode and
secure boot. Prints one PASS line per checked step; any failure raises.

usage: ilo_proliantutils.py HOST:PORT USER PASSWORD ISO_URL
"""
import sys

from proliantutils.redfish import redfish as rf

from common import ok, wait

host, user, password, iso = sys.argv[1:5]


ops = rf.RedfishOperations(host, user, password)


def cd():
    """The CD slot as proliantutils' own resource classes read it."""
    return ops._get_sushy_manager('1').virtual_media.get_member_device(rf.VIRTUAL_MEDIA_MAP['CDROM'])

name = ops.get_product_name()
assert 'Gen10' in name, name
ok('connect: ' + name)

# Ironic's ilo power interface powers off with press-and-hold
# (proliantutils' set_host_power('OFF') retries until the host is ON).
if ops.get_host_power_status() == 'ON':
    ops.hold_pwr_btn()
wait(lambda: ops.get_host_power_status() == 'OFF', 'power off')
assert ops.get_host_post_state() == 'PowerOff', ops.get_host_post_state()
ok('power off, PostState PowerOff')

ops.insert_virtual_media(iso, 'CDROM')
assert cd().inserted and cd().image == iso, (cd().inserted, cd().image)
ok('insert virtual media CDROM')

ops.set_vm_status('CDROM', 'BOOT_ONCE')
assert cd().json['Oem']['Hpe']['BootOnNextServerReset'] is True, cd().json['Oem']
ok('virtual media BootOnNextServerReset')

ops.set_one_time_boot('CDROM')
assert ops.get_one_time_boot() == 'CDROM', ops.get_one_time_boot()
ok('one-time boot CDROM')

ops.set_host_power('ON')
assert ops.get_host_power_status() == 'ON'
assert ops.get_host_post_state() == 'InPost', ops.get_host_post_state()
ok('power on, PostState InPost')

ops.press_pwr_btn()
wait(lambda: ops.get_host_power_status() == 'OFF', 'the power button to shut down')
ok('power button press shuts down')

ops.press_pwr_btn()
wait(lambda: ops.get_host_power_status() == 'ON', 'the power button to power on')
ok('power button press powers on')

ops.reset_server()
assert ops.get_host_power_status() == 'ON'
ok('reset server')

ops.hold_pwr_btn()
assert ops.get_host_power_status() == 'OFF'
ok('power button press-and-hold powers off')

ops.eject_virtual_media('CDROM')
assert not cd().inserted, cd().json
ok('eject virtual media CDROM')

mode = ops.get_current_boot_mode()
assert mode in ('UEFI', 'LEGACY'), mode
ops.set_pending_boot_mode('uefi')
assert ops.get_pending_boot_mode() == 'UEFI', ops.get_pending_boot_mode()
ok('pending boot mode UEFI (current %s)' % mode)

ops.set_bios_settings({'ProcVirtualization': 'Disabled'})
pending = ops.get_pending_bios_settings()
assert pending.get('ProcVirtualization') == 'Disabled', pending
ok('BIOS setting pending')

ops.set_host_power('ON')
wait(lambda: ops.get_current_boot_mode() == 'UEFI', 'the boot mode to apply at power-on')
assert ops.get_current_bios_settings().get('ProcVirtualization') == 'Disabled'
ok('boot mode and BIOS setting applied at power-on')

ops.set_secure_boot_mode(True)
ops.reset_server()
wait(lambda: ops.get_secure_boot_mode() is True, 'secure boot to apply at the reset')
ok('secure boot on after a reset')

ops.hold_pwr_btn()
wait(lambda: ops.get_host_power_status() == 'OFF', 'power off')
ok('power off at the end')
