"""Ironic's ilo5 virtual media boot, through proliantutils: power off with the
power button, insert the ISO, one-time boot from the CD, power on. The caller
checks what the guest booted.

usage: ilo_vmedia_boot.py HOST:PORT USER PASSWORD ISO_URL
"""
import sys
import time

from proliantutils.redfish import redfish as rf

host, user, password, iso = sys.argv[1:5]
ops = rf.RedfishOperations(host, user, password)
if ops.get_host_power_status() == 'ON':
    ops.hold_pwr_btn()
end = time.time() + 60
while ops.get_host_power_status() != 'OFF':
    assert time.time() < end, 'still on'
    time.sleep(0.5)
ops.insert_virtual_media(iso, 'CDROM')
print('PASS inserted', flush=True)
ops.set_one_time_boot('CDROM')
assert ops.get_one_time_boot() == 'CDROM'
print('PASS one-time CD boot set', flush=True)
ops.set_host_power('ON')
assert ops.get_host_power_status() == 'ON'
print('PASS powered on, PostState', ops.get_host_post_state(), flush=True)
