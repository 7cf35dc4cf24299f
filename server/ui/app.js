// Ferry's dashboard: one page, no build step, no library. It calls the API
// with the token the user pastes (kept in this tab's sessionStorage, sent
// only in the Authorization header). Everything it shows from the API is
// inserted as text (textContent and text nodes, never parsed as HTML), so
// no data can become markup.
'use strict';

(function () {
  const TOKEN_KEY = 'ferry.token';
  const OVERVIEW_EVERY_MS = 5000;
  const DETAILS_EVERY_MS = 30000;
  const ENDED = new Set(['completed', 'failed', 'aborted', 'rolled_back']);
  // The overview's per-group details, by group, for the view opened at
  // generation detailsGen.
  const detailsCache = new Map();
  let detailsGen = -1;
  const RUN_EVERY_MS = 1000;

  const $ = (id) => document.getElementById(id);

  // el builds an element; strings among children become text nodes.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'href') e.setAttribute('href', safeHref(v));
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  // safeHref lets through links within the page and http(s) URLs only.
  function safeHref(u) {
    u = String(u);
    if (u.startsWith('#') || /^https?:\/\//i.test(u)) return u;
    return '#/';
  }

  function clear(node) { node.replaceChildren(); return node; }

  // ---- API ----------------------------------------------------------------

  class Problem extends Error {
    constructor(status, p) {
      const title = p.title || ('HTTP ' + status);
      super(p.detail ? title + ': ' + p.detail : title);
      this.status = status;
      this.title = title;
      this.detail = p.detail || '';
      this.field = p.field || '';
      this.runID = p.run_id || '';
    }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  async function api(method, path, body, accept) {
    const headers = { Authorization: 'Bearer ' + token(), Accept: accept || 'application/json' };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new Problem(0, { title: 'The API does not answer', detail: String(e && e.message || e) });
    }
    if (!res.ok) {
      let p = { title: res.status + ' ' + res.statusText };
      try {
        const ct = res.headers.get('Content-Type') || '';
        if (ct.includes('json')) p = await res.json();
        else p.detail = (await res.text()).slice(0, 300);
      } catch (_) { /* keep the status line */ }
      const err = new Problem(res.status, p);
      if (res.status === 401) signOut(err.message);
      throw err;
    }
    return res;
  }
  const getJSON = async (path) => (await api('GET', path)).json();
  const enc = encodeURIComponent;

  // ---- errors -------------------------------------------------------------

  function showError(err) {
    if (err && err.status === 401) return; // the sign-in page says it
    $('error-title').textContent = err instanceof Problem ? err.title : 'Error';
    let detail = err instanceof Problem ? err.detail : String(err && err.message || err);
    if (err && err.field) detail += ' (field: ' + err.field + ')';
    $('error-detail').textContent = detail;
    const d = $('error-detail');
    if (err && err.runID) d.append(' ', el('a', { href: '#/runs/' + enc(err.runID), text: 'see run …' + err.runID.slice(-8) }));
    $('error').hidden = false;
  }
  function clearError() { $('error').hidden = true; }

  // problemText is a problem for a dialog's inline error line.
  function problemText(err) {
    let t = err instanceof Problem ? err.message : String(err && err.message || err);
    if (err && err.field) t += ' (field: ' + err.field + ')';
    return t;
  }

  // ---- formatting ---------------------------------------------------------

  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d) || d.getFullYear() < 1970) return '';
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function fmtClock(iso) { const t = fmtTime(iso); return t ? t.slice(11) : ''; }
  function fmtDur(secs) {
    if (secs === undefined || secs === null || isNaN(secs)) return '';
    secs = Math.max(0, secs);
    if (secs < 10) return secs.toFixed(1) + ' s';
    if (secs < 60) return Math.round(secs) + ' s';
    const m = Math.floor(secs / 60), s = Math.round(secs % 60);
    if (m < 60) return m + ' min ' + s + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  function between(a, b) {
    if (!a) return null;
    const end = b ? new Date(b) : new Date();
    return (end - new Date(a)) / 1000;
  }
  function ago(iso) {
    const s = between(iso, null);
    return s === null ? '' : fmtDur(s) + ' ago';
  }

  const runColours = {
    completed: 'green', running: 'blue', waiting_approval: 'amber', paused: 'amber',
    failed: 'red', rolled_back: 'red', aborted: 'grey', pending: 'grey',
  };
  const stepColours = {
    completed: 'green', running: 'blue', pending: 'grey', failed: 'red', skipped: 'amber', compensated: 'amber',
  };
  function badge(state, colours) {
    return el('span', { class: 'badge ' + (colours[state] || 'grey'), 'data-state': state, text: (state || '').replace(/_/g, ' ') });
  }

  // replicaColour: green within the RPO (the API's rpo_compliant), amber
  // past it up to three times (the monitor warns past twice), red past
  // three times or in error (the monitor's critical), grey never observed.
  function replicaColour(r, rpo) {
    if (!r.observed || new Date(r.observed).getFullYear() < 1970) return 'grey';
    if (r.replica_state === 'error') return 'red';
    if (r.rpo_compliant) return 'green';
    if (r.lag_seconds <= 3 * rpo) return 'amber';
    return 'red';
  }
  const worse = (a, b) => {
    const rank = { grey: 0, green: 1, amber: 2, red: 3 };
    return rank[b] > rank[a] ? b : a;
  };

  // ---- who and what they may do ---------------------------------------------

  let who = null;
  const adminKinds = ['evacuate', 'backend-failover', 'replication-monitor'];
  function may(role) { return !!(who && who.roles && who.roles.includes(role)); }
  function maySteer(kind) { return may(adminKinds.includes(kind) ? 'admin' : 'operator'); }

  // Temporal UI links, when the server knows where the UI is.
  function temporalBase() {
    const u = who && who.temporal_ui_url;
    if (!u || !/^https?:\/\//i.test(u)) return '';
    return u.replace(/\/+$/, '') + '/namespaces/' + enc(who.namespace || 'default');
  }
  function temporalRun(run) {
    const b = temporalBase();
    return b && run.workflow_id && run.id ? b + '/workflows/' + enc(run.workflow_id) + '/' + enc(run.id) + '/history' : '';
  }
  function temporalGroup(group) {
    const b = temporalBase();
    return b && group ? b + '/workflows?query=' + enc('FerryGroup="' + group + '"') : '';
  }

  // ---- sign in ----------------------------------------------------------------

  function show(section) {
    for (const id of ['login', 'overview', 'run']) $(id).hidden = id !== section;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    who = null;
    stopPolling();
    $('nav').hidden = true;
    $('signout').hidden = true;
    $('who').textContent = '';
    $('login-message').textContent = message || '';
    clearError();
    show('login');
    $('token').focus();
  }

  async function signIn() {
    who = await getJSON('/v1/whoami');
    $('who').textContent = who.name + ' · ' + who.role + (who.project ? ' · project ' + who.project : '') +
      (may('operator') ? '' : ' (read-only)');
    $('signout').hidden = false;
    $('nav').hidden = false;
    const t = temporalBase();
    const tl = $('temporal-link');
    tl.hidden = !t;
    if (t) tl.setAttribute('href', safeHref(t + '/workflows'));
  }

  // ---- polling ------------------------------------------------------------------

  // Each view refreshes itself after its last refresh ended, never twice
  // at once; navigating away bumps the generation and stops the old loop.
  let generation = 0;
  let timer = null;
  function stopPolling() { generation++; clearTimeout(timer); }
  function poll(fn, every) {
    stopPolling();
    const gen = generation;
    const tick = async () => {
      try {
        await fn(gen);
        if (gen === generation) clearError();
      } catch (e) {
        if (gen === generation) showError(e);
      }
      if (gen === generation && token()) timer = setTimeout(tick, every);
    };
    tick();
  }

  // ---- overview -------------------------------------------------------------------

  async function loadOverview(gen) {
    const [sites, backends, groups, runs] = await Promise.all([
      getJSON('/v1/sites?limit=1000'), getJSON('/v1/backends?limit=1000'),
      getJSON('/v1/groups?limit=1000'), getJSON('/v1/runs?limit=25'),
    ]);
    // Per group: its replicas and its last drill. Two requests a group, so
    // they are kept for DETAILS_EVERY_MS (the monitors report every few
    // minutes anyway) and read again sooner only for a group with a run
    // under way or when the view is opened anew: a site of hundreds of
    // groups watched by several people must not flood the API.
    const busy = new Set(runs.items.filter((r) => !ENDED.has(r.state)).map((r) => r.group));
    if (gen !== detailsGen) { detailsGen = gen; detailsCache.clear(); }
    const now = Date.now();
    const details = await Promise.all(groups.items.map(async (g) => {
      const kept = detailsCache.get(g.name);
      if (kept && now - kept.at < DETAILS_EVERY_MS && !busy.has(g.name) && !kept.busy) return kept.value;
      const [rep, drills] = await Promise.all([
        getJSON('/v1/groups/' + enc(g.name) + '/replication'),
        getJSON('/v1/runs?kind=drill&limit=1&group=' + enc(g.name)),
      ]);
      const value = { rep, drill: drills.items[0] };
      detailsCache.set(g.name, { at: now, value, busy: busy.has(g.name) });
      return value;
    }));
    if (gen !== generation) return;
    renderSites(sites.items, backends.items);
    renderGroups(groups.items, details);
    renderRuns(runs.items, runs.next_page_token);
  }

  function renderSites(sites, backends) {
    const tb = clear($('sites'));
    for (const s of sites) {
      const mine = backends.filter((b) => b.site === s.name);
      const cell = el('td', {}, mine.length ? '' : el('span', { class: 'muted', text: 'no backend' }));
      for (const b of mine) {
        // replication_status is what a run last set (Cinder's words); a
        // backend no run has touched has none.
        const st = b.replication_status;
        const colour = { enabled: 'green', 'failed-over': 'amber', 'failing-over': 'blue', error: 'red', 'failover-error': 'red', disabled: 'grey' }[st] || 'grey';
        cell.append(el('div', { 'data-backend': b.name },
          el('strong', { text: b.name }), ' ', el('span', { class: 'muted', text: b.type }), ' ',
          st ? el('span', { class: 'badge ' + colour, text: st }) : '',
          b.active_backend_id ? el('span', { class: 'muted small', text: ' active backend ' + b.active_backend_id }) : '',
          b.frozen ? el('span', { class: 'badge red', text: 'frozen' }) : ''));
      }
      tb.append(el('tr', { 'data-site': s.name },
        el('td', {}, el('strong', { text: s.name }), s.description ? el('div', { class: 'muted small', text: s.description }) : ''),
        cell));
    }
  }

  function renderGroups(groups, details) {
    const tb = clear($('groups'));
    groups.forEach((g, i) => {
      const { rep, drill } = details[i];
      const active = g.active_site || g.primary_site;
      const rpo = rep.rpo_seconds || g.rpo_seconds;

      let overall = 'grey';
      const bad = [];
      const all = el('div', {});
      for (const r of rep.items) {
        const c = replicaColour(r, rpo);
        overall = worse(overall, c);
        const line = el('div', { class: 'replica', 'data-colour': c, title: 'observed ' + fmtTime(r.observed) },
          el('span', { class: 'dot ' + c }), r.resource + ' @ ' + r.site + '\u00a0', el('span', { class: 'muted', text: r.replica_state + '\u00a0' }),
          el('span', { class: 'lag', text: 'lag ' + fmtDur(r.lag_seconds) }));
        all.append(line);
        if (c !== 'green') bad.push(line.cloneNode(true));
      }
      const summary = rep.items.length === 0
        ? el('span', { class: 'badge grey', 'data-health': 'grey', text: 'not observed yet' })
        : el('span', { class: 'badge ' + overall, 'data-health': overall,
          text: overall === 'green' ? rep.items.length + ' replicas within the RPO' : bad.length + ' of ' + rep.items.length + ' replicas need attention' });
      const replicas = el('td', {}, summary, ...bad,
        rep.items.length ? el('details', {}, el('summary', { class: 'muted small', text: 'every replica' }), all) : '');

      const lastDrill = drill
        ? el('td', {}, el('a', { href: '#/runs/' + enc(drill.id) }, badge(drill.state, runColours)),
          el('div', { class: 'muted small', text: fmtTime(drill.created) + ' (' + ago(drill.created) + ')' }))
        : el('td', { class: 'muted', text: 'never drilled' });

      const actions = el('td', { class: 'actions' });
      if (may('operator')) {
        actions.append(
          el('button', { type: 'button', class: 'small', 'data-kind': 'drill', onclick: () => openStart('drill', g) }, 'Drill…'),
          el('button', { type: 'button', class: 'small danger', 'data-kind': 'failover', onclick: () => openStart('failover', g) }, 'Failover…'),
          el('button', { type: 'button', class: 'small plain', 'data-kind': 'more', onclick: () => openStart(active === g.primary_site ? 'reprotect' : 'failback', g) }, 'Other…'));
      }
      const tl = temporalGroup(g.name);
      if (tl) actions.append(el('a', { href: tl, target: '_blank', rel: 'noopener noreferrer', class: 'small', text: 'runs in Temporal' }));

      tb.append(el('tr', { 'data-group': g.name },
        el('td', {}, el('strong', { text: g.name }), g.project ? el('div', { class: 'muted small', text: 'project ' + g.project }) : ''),
        el('td', {}, g.primary_site + ' → ' + g.dr_site, el('div', {}, 'active ', el('span', { class: 'badge ' + (active === g.primary_site ? 'blue' : 'amber'), text: active }))),
        el('td', { class: 'num', text: fmtDur(rpo) }),
        replicas, lastDrill, actions));
    });
  }

  function scopeOf(r) {
    if (r.group) return r.group + (r.site ? ' → ' + r.site : '');
    if (r.backend) return 'backend ' + r.backend;
    return r.site ? 'site ' + r.site : '';
  }

  function renderRuns(runs, more) {
    const tb = clear($('runs'));
    $('runs-hint').textContent = runs.length ? '(newest ' + runs.length + (more ? '; older with ferry runs' : '') + ')' : '';
    if (!runs.length) tb.append(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No run yet.' })));
    for (const r of runs) {
      tb.append(el('tr', { 'data-run': r.id },
        // Run ids are UUIDv7: their start is the time, their end tells runs apart.
        el('td', {}, el('a', { href: '#/runs/' + enc(r.id), title: r.id, text: '…' + r.id.slice(-8) })),
        el('td', { text: r.kind + (r.mode && r.mode !== 'planned' ? ' (' + r.mode + ')' : '') }),
        el('td', { text: scopeOf(r) }),
        el('td', {}, badge(r.state, runColours)),
        el('td', { text: fmtTime(r.created) }),
        el('td', { class: 'num', text: fmtDur(between(r.created, r.ended)) }),
        el('td', { class: 'muted', text: r.started_by || r.requested_by || '' })));
    }
  }

  // ---- start: dry run first, then confirm ----------------------------------------------

  let startGroup = null;
  let planned = null; // the body the shown dry run was made with

  function openStart(kind, g) {
    startGroup = g;
    $('start-kind').value = kind;
    $('start-group').value = g.name;
    $('start-mode').value = 'planned';
    $('start-hold').value = '0';
    $('start-skip').checked = false;
    $('start-by').value = '';
    startChanged();
    $('start-dialog').showModal();
  }

  // startChanged shows the fields the kind takes and forgets the plan:
  // whatever changed, the dry run must be made again before a start.
  function startChanged() {
    const kind = $('start-kind').value;
    $('start-title').textContent = 'Start a ' + kind + ' of ' + (startGroup ? startGroup.name : '');
    $('start-mode-label').hidden = kind !== 'failover';
    $('start-hold-label').hidden = kind !== 'drill';
    $('start-skip-label').hidden = !['failover', 'failback'].includes(kind);
    planned = null;
    $('plan').hidden = true;
    $('start-error').hidden = true;
    $('start-confirm').hidden = true;
    $('start-confirm').disabled = true;
    $('start-plan').disabled = false;
  }

  function startBody() {
    const kind = $('start-kind').value;
    const body = { kind, group: $('start-group').value, requested_by: $('start-by').value.trim(), options: {} };
    if (kind === 'failover') body.mode = $('start-mode').value;
    if (kind === 'drill') body.options.hold_seconds = Number($('start-hold').value) || 0;
    if (['failover', 'failback'].includes(kind)) body.options.skip_approval = $('start-skip').checked;
    return body;
  }

  async function dryRun() {
    const body = startBody();
    $('start-error').hidden = true;
    $('start-plan').disabled = true;
    $('start-plan').textContent = 'Planning…';
    try {
      const plan = await (await api('POST', '/v1/runs', Object.assign({}, body, { dry_run: true }))).json();
      planned = body;
      renderPlan(plan, body);
    } catch (e) {
      $('start-error').textContent = problemText(e);
      $('start-error').hidden = false;
    } finally {
      $('start-plan').disabled = false;
      $('start-plan').textContent = 'Dry run';
    }
  }

  function renderPlan(plan, body) {
    const pre = plan.preconditions || [];
    const failed = pre.filter((p) => !p.passed);
    const rto = plan.rto_estimate_seconds;
    $('plan-summary').textContent =
      (plan.ready ? 'Ready: every precondition passed.' : failed.length + ' precondition(s) failed: the run will most likely refuse to start its work.') +
      ' Runs at ' + (plan.site || 'its site') + '.' +
      (rto !== null && rto !== undefined ? ' Estimated RTO ' + fmtDur(rto) + ' (' + (plan.rto_basis || '') + ').' : ' No RTO estimate yet (no completed run with timings).');
    $('plan-summary').className = plan.ready ? 'message' : 'error-inline';
    const steps = clear($('plan-steps'));
    for (const s of plan.steps || []) steps.append(el('li', { text: s }));
    const ul = clear($('plan-pre'));
    for (const p of pre) {
      ul.append(el('li', { 'data-passed': String(!!p.passed) },
        el('span', { class: 'dot ' + (p.passed ? 'green' : 'red') }), p.name,
        p.detail ? el('div', { class: 'muted small', text: p.detail }) : ''));
    }
    const touches = clear($('plan-touches'));
    for (const t of plan.touches || []) touches.append(el('li', { text: t }));
    if (!(plan.touches || []).length) touches.append(el('li', { class: 'muted', text: 'nothing listed' }));
    $('plan').hidden = false;
    const c = $('start-confirm');
    c.textContent = (plan.ready ? 'Start ' : 'Start anyway: ') + body.kind + ' of ' + body.group;
    c.hidden = false;
    c.disabled = false;
  }

  async function confirmStart() {
    if (!planned) return;
    const c = $('start-confirm');
    c.disabled = true;
    try {
      const run = await (await api('POST', '/v1/runs', planned)).json();
      $('start-dialog').close();
      location.hash = '#/runs/' + enc(run.id);
    } catch (e) {
      $('start-error').textContent = problemText(e);
      $('start-error').hidden = false;
      c.disabled = false;
    }
  }

  // ---- a run, live ---------------------------------------------------------------------

  let shownRun = null;

  async function loadRun(id, gen) {
    const run = await getJSON('/v1/runs/' + enc(id));
    if (gen !== generation) return;
    shownRun = run;
    renderRun(run);
    // An ended run does not change: stop asking.
    if (['completed', 'rolled_back', 'failed', 'aborted'].includes(run.state)) stopPolling();
  }

  function renderRun(r) {
    const scope = r.group ? 'group ' + r.group : r.backend ? 'backend ' + r.backend : 'site ' + (r.site || '');
    $('run-title').textContent = r.kind + ' of ' + scope;
    $('run-state').replaceWith(Object.assign(badge(r.state, runColours), { id: 'run-state' }));
    $('run-message').textContent = r.message || '';

    const facts = clear($('run-facts'));
    const fact = (k, v) => { if (v !== undefined && v !== null && v !== '') facts.append(el('dt', { text: k }), el('dd', { text: String(v) })); };
    fact('Run id', r.id);
    fact('Workflow id', r.workflow_id);
    fact('Target site', r.site);
    fact('Mode', r.mode);
    fact('Started', fmtTime(r.created));
    fact('Ended', fmtTime(r.ended));
    fact(r.ended ? 'Took' : 'Running for', fmtDur(between(r.created, r.ended)));
    fact('Requested by', r.requested_by);
    fact('Started by', r.started_by);
    if (r.rto_seconds !== undefined) fact('RTO', fmtDur(r.rto_seconds));
    if (r.rpo_seconds !== undefined) fact('RPO achieved', fmtDur(r.rpo_seconds));
    if (r.writes_lost !== undefined) fact('Writes lost', r.writes_lost < 0 ? 'unknown (the storage cannot tell)' : r.writes_lost);
    if ((r.flags || []).length) fact('Flags', r.flags.join(', '));

    const tr = $('run-temporal');
    const tu = temporalRun(r);
    tr.hidden = !tu;
    if (tu) tr.setAttribute('href', safeHref(tu));
    const tg = $('run-temporal-group');
    const gu = temporalGroup(r.group);
    tg.hidden = !gu;
    if (gu) tg.setAttribute('href', safeHref(gu));

    renderActions(r);

    const tb = clear($('steps'));
    (r.steps || []).forEach((s, i) => {
      const note = el('td', {});
      if (s.error) note.append(el('div', { class: 'error-text', text: s.error }));
      if (s.note) note.append(el('div', { class: 'muted', text: s.note }));
      if (s.output) note.append(el('details', {}, el('summary', { class: 'small', text: 'output' }), el('pre', { text: s.output })));
      tb.append(el('tr', { class: 'step-' + s.state, 'data-step': s.name },
        el('td', { class: 'num muted', text: String(i + 1) }),
        el('td', { text: s.name }),
        el('td', {}, badge(s.state, stepColours)),
        el('td', { text: fmtClock(s.started) }),
        el('td', { text: fmtClock(s.ended) }),
        el('td', { class: 'num', text: s.started ? fmtDur(between(s.started, s.ended)) : '' }),
        el('td', { class: 'num', text: s.attempts ? String(s.attempts) : '' }),
        note));
    });
    if (!(r.steps || []).length) tb.append(el('tr', {}, el('td', { colspan: 8, class: 'muted', text: 'No step has started yet.' })));

    const ev = clear($('run-events'));
    for (const a of r.approvals || []) ev.append(el('li', {}, 'approved by ' + a.by + ' at ' + fmtTime(a.at) + (a.comment ? ': ' + a.comment : '')));
    for (const e of r.events || []) ev.append(el('li', {}, e.action + ' by ' + e.by + ' at ' + fmtTime(e.at) + (e.step ? ' (step ' + e.step + ')' : '') + (e.comment ? ': ' + e.comment : '')));
    if (!ev.children.length) ev.append(el('li', { class: 'muted', text: 'none' }));

    const kids = r.children || [];
    $('run-children-panel').hidden = !kids.length;
    const kb = clear($('run-children'));
    for (const c of kids) {
      kb.append(el('tr', {},
        el('td', {}, c.run_id ? el('a', { href: '#/runs/' + enc(c.run_id), text: c.group }) : c.group),
        el('td', { class: 'num', text: String(c.priority) }),
        el('td', {}, badge(c.state, runColours)),
        el('td', { class: 'muted', text: c.message || '' })));
    }
  }

  // The steering buttons a run's state allows, for a token whose role may
  // steer its kind. The workflow is the authority: a refused action comes
  // back as a 409 and is shown.
  const actionText = {
    approve: 'Approve: the run goes past its approval gate and starts changing things.',
    pause: 'Pause: the run stops at the next step boundary until resumed.',
    resume: 'Resume: the paused run carries on.',
    retry: 'Retry the failed step.',
    skip: 'Skip the failed step and carry on as if it had completed. Only when you have done its work by hand.',
    abort: 'Abort the run. A failover that has not promoted yet rolls back; after promote it stops where it is.',
  };
  function renderActions(r) {
    const box = clear($('run-actions'));
    if (!maySteer(r.kind)) {
      if (!['completed', 'rolled_back', 'failed', 'aborted'].includes(r.state)) box.append(el('span', { class: 'muted', text: 'read-only: your role cannot steer this run' }));
      return;
    }
    let acts = [];
    const failedStep = (r.steps || []).some((s) => s.state === 'failed');
    switch (r.state) {
      case 'waiting_approval': acts = ['approve', 'abort']; break;
      case 'running': case 'pending': acts = ['pause', 'abort']; break;
      case 'paused': acts = failedStep ? ['retry', 'skip', 'abort'] : ['resume', 'abort']; break;
    }
    for (const a of acts) {
      box.append(el('button', { type: 'button', class: a === 'abort' || a === 'skip' ? 'danger' : '', 'data-action': a, onclick: () => openConfirm(a, r) }, a[0].toUpperCase() + a.slice(1) + '…'));
    }
  }

  let confirming = null;
  function openConfirm(action, r) {
    confirming = { action, id: r.id };
    $('confirm-title').textContent = action[0].toUpperCase() + action.slice(1) + ' ' + r.kind + ' of ' + (r.group || r.site || r.backend) + '?';
    $('confirm-text').textContent = actionText[action];
    $('confirm-comment').value = '';
    $('confirm-error').hidden = true;
    $('confirm-ok').textContent = action[0].toUpperCase() + action.slice(1);
    $('confirm-ok').disabled = false;
    $('confirm-dialog').showModal();
  }

  async function confirmAction() {
    if (!confirming) return;
    const { action, id } = confirming;
    $('confirm-ok').disabled = true;
    try {
      const run = await (await api('POST', '/v1/runs/' + enc(id) + '/' + action, { comment: $('confirm-comment').value.trim() })).json();
      $('confirm-dialog').close();
      renderRun(run);
      route(); // polls again, also when the run had stopped being polled
    } catch (e) {
      $('confirm-error').textContent = problemText(e);
      $('confirm-error').hidden = false;
      $('confirm-ok').disabled = false;
    }
  }

  // ---- report ------------------------------------------------------------------------------

  // The report is fetched with the token and shown in a sandboxed iframe
  // (srcdoc: no script runs in it, and it has no origin of its own), never
  // opened by a URL that would have to carry the token.
  async function openReport() {
    if (!shownRun) return;
    const id = shownRun.id;
    const frame = $('report-frame'), text = $('report-text'), save = $('report-save');
    if (save.href) URL.revokeObjectURL(save.href);
    save.hidden = true;
    try {
      let res = await api('GET', '/v1/runs/' + enc(id) + '/report?format=html', undefined, 'text/html');
      let ct = res.headers.get('Content-Type') || '';
      if (ct.startsWith('text/html')) {
        const html = await res.text();
        frame.srcdoc = html;
        frame.hidden = false;
        text.hidden = true;
        // A copy to file with the run, made here: the link holds the page,
        // not the token.
        save.setAttribute('href', URL.createObjectURL(new Blob([html], { type: 'text/html' })));
        save.setAttribute('download', 'ferry-report-' + id + '.html');
        save.hidden = false;
      } else {
        // A server without the HTML report: its Markdown report, as text.
        res = await api('GET', '/v1/runs/' + enc(id) + '/report', undefined, 'text/markdown');
        text.textContent = await res.text();
        text.hidden = false;
        frame.hidden = true;
      }
      $('report-panel').hidden = false;
      $('report-panel').scrollIntoView();
    } catch (e) {
      showError(e);
    }
  }

  // ---- routing -------------------------------------------------------------------------------

  function route() {
    if (!token()) { signOut(''); return; }
    const m = location.hash.match(/^#\/runs\/([^/]+)$/);
    if (m) {
      const id = decodeURIComponent(m[1]);
      if (!shownRun || shownRun.id !== id) {
        shownRun = null;
        $('report-panel').hidden = true;
        $('run-title').textContent = 'Run ' + id;
        clear($('steps'));
        clear($('run-actions'));
      }
      show('run');
      poll((gen) => loadRun(id, gen), RUN_EVERY_MS);
      return;
    }
    show('overview');
    poll(loadOverview, OVERVIEW_EVERY_MS);
  }

  async function start() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
      $('token').value = '';
      try {
        await signIn();
        route();
      } catch (e) {
        if (e.status !== 401) signOut(problemText(e));
      }
    });
    // The dialogs' forms are never submitted: Enter in a field must not
    // close a dialog or start anything.
    for (const id of ['start-form', 'confirm-form']) $(id).addEventListener('submit', (ev) => ev.preventDefault());
    $('signout').addEventListener('click', () => signOut('Signed out.'));
    $('error-close').addEventListener('click', clearError);
    for (const id of ['start-kind', 'start-mode', 'start-hold', 'start-skip']) $(id).addEventListener('change', startChanged);
    $('start-plan').addEventListener('click', dryRun);
    $('start-confirm').addEventListener('click', confirmStart);
    $('start-cancel').addEventListener('click', () => $('start-dialog').close());
    $('confirm-ok').addEventListener('click', confirmAction);
    $('confirm-cancel').addEventListener('click', () => $('confirm-dialog').close());
    $('run-report-open').addEventListener('click', openReport);
    $('report-close').addEventListener('click', () => { $('report-panel').hidden = true; });
    window.addEventListener('hashchange', () => { if (who) route(); });

    if (!token()) { signOut(''); return; }
    try {
      await signIn();
      route();
    } catch (e) {
      if (e.status !== 401) { show('login'); showError(e); }
    }
  }

  start();
})();
