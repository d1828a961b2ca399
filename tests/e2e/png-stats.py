#!/usr/bin/env python3
"""Counts the non-black pixels of a region of a PNG (8-bit RGB or RGBA, not
interlaced), with the standard library only (zlib).

usage: png-stats.py FILE [X Y W H]
prints: WIDTHxHEIGHT region=X,Y,W,H nonblack=N distinct=M
"""
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit("not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = hdr
    if depth != 8 or color not in (2, 6) or interlace:
        raise SystemExit(f"unsupported PNG: depth {depth} color {color} interlace {interlace}")
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    w, h, bpp, rows = decode(sys.argv[1])
    if len(sys.argv) >= 6:
        x0, y0, rw, rh = (int(float(v)) for v in sys.argv[2:6])
    else:
        x0, y0, rw, rh = 0, 0, w, h
    x1, y1 = min(w, x0 + rw), min(h, y0 + rh)
    nonblack, distinct = 0, set()
    for y in range(max(0, y0), y1):
        row = rows[y]
        for x in range(max(0, x0), x1):
            px = row[x * bpp:x * bpp + 3]
            distinct.add(px)
            if max(px) > 32:
                nonblack += 1
    print(f"{w}x{h} region={x0},{y0},{x1 - x0},{y1 - y0} nonblack={nonblack} distinct={len(distinct)}")


main()
