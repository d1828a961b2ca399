// Redfin BMC web UI: a client of the Redfish API, nothing more. The session
// token lives in sessionStorage and goes out in X-Auth-Token; no cookies.
'use strict';
const $ = (s) => document.querySelector(s);
const S = sessionStorage;
const R = '/redfish/v1';
let root = {};

// An element: h('td', {class: 'ok'}, 'text', child...). Text is never parsed as HTML.
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) if (c != null && c !== false && c !== '') e.append(c instanceof Node ? c : String(c));
  return e;
}
const row = (...cells) => h('tr', null, cells.map((c) => h('td', null, c)));
const table = (heads, rows) => h('table', null, h('tr', null, heads.map((t) => h('th', null, t))), rows);
const id = (o) => o && o['@odata.id'];
const health = (s) => { const v = (s && (s.HealthRollup || s.Health)) || '-'; return h('span', {class: v === 'OK' ? 'ok' : v === 'Warning' ? 'warn' : 'bad'}, v); };

function say(text, err) { const m = $('#msg'); m.textContent = text || ''; m.className = err ? 'err' : ''; }

// The messages of a Redfish error body.
function messages(j) {
  const e = (j && j.error) || j || {};
  const info = e['@Message.ExtendedInfo'] || [];
  const m = info.map((i) => i.Message).filter(Boolean);
  return m.length ? m.join(' ') : e.message || '';
}

async function api(method, path, body, raw) {
  const headers = {};
  if (S.tok) headers['X-Auth-Token'] = S.tok;
  if (body !== undefined && !raw) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(body); }
  // credentials 'omit': no cookies, and no Basic prompt on a 401 (bmcd sends WWW-Authenticate).
  const r = await fetch(path, {method, headers, body, cache: 'no-store', credentials: 'omit'});
  let j = null;
  if (r.status !== 204) { try { j = await r.json(); } catch (e) { j = null; } }
  if (r.status === 401 && S.tok) { S.clear(); show(); }
  if (!r.ok) throw new Error(messages(j) || r.status + ' ' + r.statusText);
  return {status: r.status, json: j, headers: r.headers};
}
const get = async (p) => (await api('GET', p)).json;
// Every member of a collection, read.
const members = async (p) => Promise.all(((await get(p)).Members || []).map((m) => get(id(m))));

// Runs an action, reports its failure.
async function act(what, f) {
  say(what + '…');
  try { await f(); say(what + ': done'); } catch (e) { say(what + ': ' + e.message, true); }
}

// Polls a task monitor until the task ends (the monitor stops answering 202);
// shows its progress in `el`; the task as it ended.
async function watch(monitor, taskUri, el) {
  const bar = h('progress', {max: 100, value: 0}), state = h('span', {class: 'task'}, 'New');
  el.replaceChildren(bar, ' ', state);
  for (;;) {
    let t = null;
    try { t = await api('GET', monitor); } catch (e) { /* ended in error: the task says which */ }
    const j = (t && t.json) || {};
    if (!t || t.status !== 202) break;
    taskUri = id(j) || taskUri;
    bar.value = j.PercentComplete || 0;
    state.textContent = (j.TaskState || 'Running') + (j.PercentComplete != null ? ' ' + j.PercentComplete + '%' : '');
    await new Promise((ok) => setTimeout(ok, 500));
  }
  const j = await get(taskUri);
  const m = messages({'@Message.ExtendedInfo': j.Messages || []});
  bar.value = j.PercentComplete || (j.TaskState === 'Completed' ? 100 : bar.value);
  state.textContent = j.TaskState + (m ? ': ' + m : '');
  state.className = 'task ' + (j.TaskState === 'Completed' ? 'ok' : 'bad');
  return j;
}
// An action answered 202: watch its task.
async function task(r, el) {
  const m = r.headers.get('Location') || (r.json && r.json.TaskMonitor);
  if (r.status === 202 && m) {
    const j = await watch(m, id(r.json), el);
    if (j.TaskState !== 'Completed') throw new Error('task ' + j.TaskState);
  }
}

function login() {
  const u = h('input', {name: 'user', autocomplete: 'username', placeholder: 'User name', required: true});
  const p = h('input', {name: 'password', type: 'password', autocomplete: 'current-password', placeholder: 'Password', required: true});
  const f = h('form', {class: 'login', id: 'login'}, h('h2', null, 'Log in to ' + (root.Product || 'the BMC')), u, p, h('button', null, 'Log in'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', (root.Links && id(root.Links.Sessions)) || R + '/SessionService/Sessions', {UserName: u.value, Password: p.value});
      S.tok = r.headers.get('X-Auth-Token');
      S.sess = r.headers.get('Location') || id(r.json);
      S.user = u.value;
      say('');
      location.hash = '#/systems';
      show();
    } catch (e) { say('Login failed: ' + e.message, true); }
  });
  return f;
}

async function systems() {
  const list = await members(id(root.Systems) || R + '/Systems');
  const personas = {};
  try { for (const e of await members(R + '/Managers/BMC/Oem/Redfin/BmcEndpoints')) personas[e.SystemId] = e.Persona + ' on ' + (e.ListeningOn || e.Address); } catch (e) { /* not an administrator, or a per-VM endpoint */ }
  return h('section', null, h('h2', null, 'Systems'), table(['Name', 'Power', 'Health', 'BMC endpoint'],
    list.map((s) => h('tr', {'data-id': s.Id}, h('td', null, h('a', {href: '#/system' + id(s)}, s.Name || s.Id)),
      h('td', {class: 'power'}, s.PowerState), h('td', null, health(s.Status)), h('td', null, personas[s.Id] || '-')))));
}

async function system(uri) {
  const s = await get(uri);
  const out = [];
  out.push(h('section', null, h('h2', {id: 'sysname'}, s.Name || s.Id),
    table(['Power', 'Health', 'Model', 'BIOS', 'UUID'], row(h('b', {id: 'power'}, s.PowerState), health(s.Status), s.Model, s.BiosVersion, s.UUID))));
  const reset = s.Actions && s.Actions['#ComputerSystem.Reset'];
  if (reset) {
    const types = reset['ResetType@Redfish.AllowableValues'] || ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart'];
    out.push(h('section', {id: 'power-actions'}, h('h2', null, 'Power'), types.map((t) => h('button', {'data-reset': t, onclick: () => act('Reset ' + t, async () => {
      await api('POST', reset.target, {ResetType: t});
      await new Promise((ok) => setTimeout(ok, 700));
      $('#power').textContent = (await get(uri)).PowerState;
    })}, t))));
  }
  const b = s.Boot || {};
  const tsel = h('select', {id: 'boot-target'}, (b['BootSourceOverrideTarget@Redfish.AllowableValues'] || ['None', 'Pxe', 'Cd', 'Hdd']).map((t) => h('option', {selected: t === b.BootSourceOverrideTarget}, t)));
  const esel = h('select', {id: 'boot-enabled'}, ['Disabled', 'Once', 'Continuous'].map((t) => h('option', {selected: t === b.BootSourceOverrideEnabled}, t)));
  out.push(h('section', null, h('h2', null, 'Boot override'), tsel, esel, h('button', {id: 'boot-apply', onclick: () => act('Boot override', () =>
    api('PATCH', uri, {Boot: {BootSourceOverrideTarget: tsel.value, BootSourceOverrideEnabled: esel.value}}))}, 'Apply')));
  if (s.VirtualMedia) out.push(await media(id(s.VirtualMedia)));
  const oem = s.Actions && s.Actions.Oem && s.Actions.Oem['#Redfin.ConsoleToken'];
  if (oem) out.push(consoles(oem.target, s));
  if (s.Bios) out.push(await bios(id(s.Bios)));
  return out;
}

async function media(uri) {
  const sec = h('section', {id: 'media'}, h('h2', null, 'Virtual media'));
  for (const m of await members(uri)) {
    const url = h('input', {class: 'media-url', size: 50, placeholder: 'http(s)://server/image.iso'});
    const prog = h('span', {class: 'progress'});
    const ins = m.Actions && m.Actions['#VirtualMedia.InsertMedia'], ej = m.Actions && m.Actions['#VirtualMedia.EjectMedia'];
    sec.append(h('div', {'data-slot': m.Id}, h('b', null, m.Id), ' ', (m.MediaTypes || []).join('/'), ': ',
      h('span', {class: 'image'}, m.Inserted ? m.Image || m.ImageName : 'empty'), h('br'), url,
      ins && h('button', {class: 'insert', onclick: () => act('Insert ' + m.Id, async () => {
        await task(await api('POST', ins.target, {Image: url.value, Inserted: true}), prog);
        const now = await get(id(m));
        sec.querySelector('[data-slot="' + m.Id + '"] .image').textContent = now.Inserted ? now.Image || now.ImageName : 'empty';
      })}, 'Insert'),
      ej && h('button', {class: 'x eject', onclick: () => act('Eject ' + m.Id, async () => {
        await task(await api('POST', ej.target, {}), prog);
        sec.querySelector('[data-slot="' + m.Id + '"] .image').textContent = 'empty';
      })}, 'Eject'), ' ', prog));
  }
  return sec;
}

function consoles(target, s) {
  const out = h('div', {id: 'console-out'});
  const mint = async (type) => (await api('POST', target, {ConsoleType: type})).json;
  const g = s.GraphicalConsole || {}, sc = (s.SerialConsole && s.SerialConsole.WebSocket) || {};
  if (!g.ServiceEnabled && !sc.ServiceEnabled) return h('section', null, h('h2', null, 'Consoles'), 'No console proxy is configured.');
  return h('section', {id: 'consoles'}, h('h2', null, 'Consoles'),
    g.ServiceEnabled && h('button', {id: 'kvm', onclick: () => act('Graphical console', async () => {
      const u = new URL((await mint('KVMIP')).WebSocketURL);
      // noVNC, served by console-proxy (--web) on its own origin.
      const page = (u.protocol === 'wss:' ? 'https://' : 'http://') + u.host + '/vnc_lite.html?path=' + encodeURIComponent(u.pathname.slice(1) + u.search);
      // A link, not window.open: the click is the user's, and the one-use token is spent only then.
      out.replaceChildren(h('a', {id: 'vnc-link', href: page, target: '_blank', rel: 'noopener'}, 'Open the graphical console (noVNC)'));
    })}, 'Graphical console'),
    sc.ServiceEnabled && h('button', {id: 'serial', onclick: () => act('Serial console', async () => terminal((await mint('Serial')).WebSocketURL, out))}, 'Serial console'),
    out);
}

// A minimal terminal: the guest's output (escape sequences dropped), keys sent as typed.
function terminal(url, el) {
  const pre = h('pre', {tabindex: 0, id: 'term'});
  el.replaceChildren(pre);
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const dec = new TextDecoder();
  ws.onmessage = (ev) => {
    const t = typeof ev.data === 'string' ? ev.data : dec.decode(ev.data, {stream: true});
    pre.append(t.replace(/\x1b\[[0-9;?]*[A-Za-z]|\r/g, ''));
    pre.scrollTop = pre.scrollHeight;
  };
  ws.onclose = (ev) => pre.append('\n[closed' + (ev.reason ? ': ' + ev.reason : '') + ']\n');
  const keys = {Enter: '\r', Backspace: '\x7f', Tab: '\t', Escape: '\x1b', ArrowUp: '\x1b[A', ArrowDown: '\x1b[B', ArrowRight: '\x1b[C', ArrowLeft: '\x1b[D'};
  pre.addEventListener('keydown', (ev) => {
    let k = keys[ev.key] || (ev.key.length === 1 ? ev.key : null);
    if (k && ev.ctrlKey && ev.key.length === 1) k = String.fromCharCode(ev.key.toUpperCase().charCodeAt(0) & 31);
    if (k && ws.readyState === 1) { ws.send(k); ev.preventDefault(); }
  });
  pre.focus();
}

async function bios(uri) {
  const b = await get(uri);
  const attrs = b.Attributes || {};
  const settings = (b['@Redfish.Settings'] && id(b['@Redfish.Settings'].SettingsObject)) || uri + '/Settings';
  const inputs = Object.entries(attrs).map(([k, v]) => [k, v, typeof v === 'boolean'
    ? h('select', {name: k}, ['true', 'false'].map((t) => h('option', {selected: String(v) === t}, t)))
    : h('input', {name: k, value: v, type: typeof v === 'number' ? 'number' : 'text'})]);
  return h('section', {id: 'bios'}, h('h2', null, 'BIOS settings (applied at the next reset)'),
    table(['Attribute', 'Value'], inputs.map(([k, , i]) => row(k, i))),
    h('button', {id: 'bios-save', onclick: () => act('BIOS settings', async () => {
      const changed = {};
      for (const [k, v, i] of inputs) {
        const n = typeof v === 'number' ? Number(i.value) : typeof v === 'boolean' ? i.value === 'true' : i.value;
        if (n !== v) changed[k] = n;
      }
      await api('PATCH', settings, {Attributes: changed});
    })}, 'Save'));
}

async function logs() {
  const mgr = ((await get(id(root.Managers) || R + '/Managers')).Members || [])[0];
  const out = [];
  for (const svc of await members(id(mgr) + '/LogServices')) {
    const e = await get(id(svc.Entries) || id(svc) + '/Entries');
    const list = (e.Members || []).slice(-100).reverse();
    out.push(h('section', {class: 'log', 'data-log': svc.Id}, h('h2', null, svc.Name || svc.Id, ' (', e['Members@odata.count'] || list.length, ')'),
      table(['Created', 'Severity', 'Message'], list.map((x) => row(x.Created, x.Severity || '', x.Message || '')))));
  }
  return out;
}

async function accounts() {
  const svc = id(root.AccountService) || R + '/AccountService';
  const list = await members(svc + '/Accounts');
  const u = h('input', {id: 'new-user', placeholder: 'User name'}), p = h('input', {id: 'new-password', type: 'password', placeholder: 'Password', autocomplete: 'new-password'});
  const role = h('select', {id: 'new-role'}, ['Administrator', 'Operator', 'ReadOnly'].map((r) => h('option', null, r)));
  return h('section', {id: 'accounts'}, h('h2', null, 'Accounts'),
    table(['User', 'Role', 'Enabled', ''], list.map((a) => h('tr', {'data-user': a.UserName}, h('td', null, a.UserName), h('td', null, a.RoleId),
      h('td', null, String(a.Enabled)), h('td', null, h('button', {class: 'x delete', onclick: () => act('Delete ' + a.UserName, async () => { await api('DELETE', id(a)); show(); })}, 'Delete'))))),
    h('h2', null, 'Add an account'), u, p, role,
    h('button', {id: 'add-user', onclick: () => act('Add ' + u.value, async () => {
      await api('POST', svc + '/Accounts', {UserName: u.value, Password: p.value, RoleId: role.value});
      show();
    })}, 'Add'));
}

async function update() {
  const u = await get(id(root.UpdateService) || R + '/UpdateService');
  const inv = await members(id(u.FirmwareInventory) || R + '/UpdateService/FirmwareInventory');
  const sec = h('section', {id: 'update'}, h('h2', null, 'Firmware'), table(['Item', 'Version', 'Updateable'], inv.map((i) => row(i.Name || i.Id, i.Version, String(i.Updateable)))));
  if (u.ServiceEnabled && u.MultipartHttpPushUri) {
    const f = h('input', {type: 'file', id: 'fw-file'}), prog = h('span');
    sec.append(h('h2', null, 'Update'), f, h('button', {onclick: () => act('Firmware update', async () => {
      if (!f.files[0]) throw new Error('choose a package first');
      const form = new FormData();
      form.append('UpdateParameters', new Blob([JSON.stringify({})], {type: 'application/json'}));
      form.append('UpdateFile', f.files[0]);
      await task(await api('POST', u.MultipartHttpPushUri, form, true), prog);
    })}, 'Upload'), ' ', prog);
  } else sec.append(h('p', null, 'Firmware update is not enabled on this BMC.'));
  return sec;
}

// The page the location's hash names.
async function show() {
  $('#nav').hidden = !S.tok;
  $('#who').textContent = S.user || '';
  const main = $('#main');
  if (!S.tok) { main.replaceChildren(login()); return; }
  const [, page, ...rest] = location.hash.split('/');
  const arg = '/' + rest.join('/');
  const pages = {system: () => system(arg), logs, accounts, update};
  try {
    main.replaceChildren(...[await (pages[page] || systems)()].flat());
  } catch (e) { say(e.message, true); }
}

async function logout() {
  try { if (S.sess) await api('DELETE', S.sess); } catch (e) { /* gone already */ }
  S.clear();
  say('Logged out');
  show();
}

addEventListener('hashchange', () => { say(''); show(); });
addEventListener('DOMContentLoaded', async () => {
  $('#logout').addEventListener('click', logout);
  try { root = await get(R); } catch (e) { root = {}; }
  // On a per-VM endpoint with a vendor persona: the vendor's colour and name.
  const v = root.Vendor || '';
  const brand = v === 'Dell' ? ['dell', 'iDRAC'] : v === 'HPE' ? ['hpe', 'iLO'] : null;
  if (brand) { document.body.classList.add(brand[0]); $('#brand').textContent = brand[1] + ' (Redfin)'; document.title = brand[1] + ' — Redfin'; }
  show();
});
