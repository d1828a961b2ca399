#!/usr/bin/env python3
"""Draw the scale results of bench/run.py as one SVG (stdlib only, no matplotlib).

    python3 bench/plot.py results.json scale.svg

Three panels against the number of domains (log axes): requests/s with wrk's connections,
p50 latency with one connection, and RSS (idle and peak under load).
"""
import json
import math
import sys

W, H = 330, 260          # one panel
ML, MR, MT, MB = 58, 12, 34, 40
COLORS = {'bmcd': '#1f5fa8', 'sushy-http': '#d9730d'}
NAMES = {'bmcd': 'bmcd (HTTPS)', 'sushy-http': 'sushy-tools (HTTP)'}


def esc(s):
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def fmt_tick(v):
    if v >= 1000:
        return '{:,}'.format(int(v))
    if v >= 1:
        return '%g' % v
    return '%g' % float('%.1g' % v)


def panel(ox, title, ylabel, xs, series, ylog=True):
    """series: list of (label, color, dash, [(x, y)]). Returns SVG elements."""
    out = []
    pw, ph = W - ML - MR, H - MT - MB
    ys = [y for _, _, _, pts in series for _, y in pts if y]
    if not ys:
        return out
    lo, hi = min(ys), max(ys)
    if ylog:
        lo_e, hi_e = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        if hi_e == lo_e:
            hi_e += 1
        ticks = [10 ** e for e in range(lo_e, hi_e + 1)]
        if hi_e - lo_e <= 2:  # few decades: label 2 and 5 as well
            ticks = sorted(t * m for t in ticks[:-1] for m in (1, 2, 5)) + ticks[-1:]

        def fy(y):
            return MT + ph - (math.log10(y) - lo_e) / (hi_e - lo_e) * ph
    else:
        top = hi * 1.1
        step = 10 ** math.floor(math.log10(top / 4)) if top > 0 else 1
        for m in (1, 2, 5, 10):
            if top / (m * step) <= 6:
                step *= m
                break
        ticks = [i * step for i in range(int(top / step) + 2)]
        top = ticks[-1]

        def fy(y):
            return MT + ph - y / top * ph
    lx = [math.log10(x) for x in xs]
    x0, x1 = min(lx), max(lx)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5

    def fx(x):
        return ML + (math.log10(x) - x0) / (x1 - x0) * pw

    g = ['<g transform="translate(%d,0)">' % ox]
    g.append('<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>' % (ML, esc(title)))
    g.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (ML, MT, pw, ph))
    for t in ticks:
        y = fy(t)
        g.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e3e3e3"/>' % (ML, ML + pw, y, y))
        g.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>' % (ML - 4, y + 3, fmt_tick(t)))
    for x in xs:
        X = fx(x)
        g.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#e3e3e3"/>' % (X, X, MT, MT + ph))
        g.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>' % (X, MT + ph + 14, '{:,}'.format(x)))
    g.append('<text x="%d" y="%d" font-size="11" text-anchor="middle">domains</text>' % (ML + pw / 2, H - 8))
    g.append('<text transform="translate(14,%d) rotate(-90)" font-size="11" text-anchor="middle">%s</text>'
             % (MT + ph / 2, esc(ylabel)))
    for label, color, dash, pts in series:
        pts = [(x, y) for x, y in pts if y]
        if not pts:
            continue
        d = ' '.join('%s%.1f,%.1f' % ('M' if i == 0 else 'L', fx(x), fy(y)) for i, (x, y) in enumerate(pts))
        g.append('<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>'
                 % (d, color, ' stroke-dasharray="5,3"' if dash else ''))
        for x, y in pts:
            g.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s domains, %s</title></circle>'
                     % (fx(x), fy(y), color, esc(label), x, '%.3g' % y))
    g.append('</g>')
    return g


def scale_svg(R):
    S = R['scale']
    xs = sorted(int(n) for n in S)
    keys = [k for k in ('bmcd', 'sushy-http') if all(k in S[str(n)] for n in xs)]

    def pts(k, fn):
        out = []
        for n in xs:
            try:
                out.append((n, fn(S[str(n)][k])))
            except (KeyError, TypeError):
                out.append((n, None))
        return out
    rps, lat, rss = [], [], []
    for k in keys:
        c = COLORS[k]
        rps.append((NAMES[k] + ', Systems', c, False, pts(k, lambda r: r['systems']['load']['rps'])))
        rps.append((NAMES[k] + ', one system', c, True, pts(k, lambda r: r['system']['load']['rps'])))
        lat.append((NAMES[k] + ', Systems', c, False, pts(k, lambda r: r['systems']['c1']['p50_ms'])))
        lat.append((NAMES[k] + ', one system', c, True, pts(k, lambda r: r['system']['c1']['p50_ms'])))
        rss.append((NAMES[k] + ', idle', c, True, pts(k, lambda r: r['rss_idle']['VmRSS'] / 1024)))
        rss.append((NAMES[k] + ', under load', c, False, pts(k, lambda r: r['rss_load']['peak_sampled'] / 1024)))
    conns = R.get('params', {}).get('conns', '?')
    total_w = 3 * W
    legend_h = 44
    el = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
          'font-family="sans-serif">' % (total_w, H + legend_h, total_w, H + legend_h),
          '<rect width="100%" height="100%" fill="white"/>']
    el += panel(0, 'GET requests/s (%s connections)' % conns, 'requests/s', xs, rps)
    el += panel(W, 'GET latency p50 (1 connection)', 'ms', xs, lat)
    el += panel(2 * W, 'Server RSS', 'MiB', xs, rss)
    # legend
    y = H + 10
    x = ML
    items = []
    for k in keys:
        items.append((NAMES[k], COLORS[k], False, None))
    items += [('solid: Systems collection / RSS under load', '#555', False, 'text'),
              ('dashed: one system / RSS idle', '#555', True, 'text')]
    for label, color, dash, kind in items:
        el.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
                  % (x, x + 24, y + 8, y + 8, color, ' stroke-dasharray="5,3"' if dash else ''))
        el.append('<text x="%d" y="%d" font-size="11">%s</text>' % (x + 30, y + 12, esc(label)))
        x += 40 + 6.2 * len(label)
    when = R.get('machine', {}).get('date', '')
    el.append('<text x="%d" y="%d" font-size="10" fill="#666">bench/run.py --mode %s, %s, %s</text>'
              % (ML, H + legend_h - 6, R.get('mode', '?'), esc(when),
                 esc('%s CPUs, %s' % (R.get('machine', {}).get('nproc'), R.get('machine', {}).get('cpu_model')))))
    el.append('</svg>')
    return '\n'.join(el) + '\n'


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        R = json.load(f)
    with open(sys.argv[2], 'w') as f:
        f.write(scale_svg(R))
