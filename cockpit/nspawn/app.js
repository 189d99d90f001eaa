/* The nspawn page: everything through nspawnctl (and, for a start,
 * nspawnctl start, which runs nspawn) with JSON output, over cockpit's
 * own channels as the superuser; no daemon and no port of our own. Every
 * check (names, URLs, states) is the tool's: the page only shows what it
 * says. */
/* global cockpit, NspawnParse, NspawnTerminal, NspawnGraph */
"use strict";

const P = NspawnParse;
const $ = id => document.getElementById(id);

// Samples every 2 s; five minutes of them for the graphs.
const TOP_DELAY = 2;
const KEEP = 150;

const state = {
    list: [],
    status: {},
    top: {},
    history: {},
    images: [],
    selected: null,
    console: null,
};

/* Run nspawnctl as the superuser; resolve with stdout, reject with the
 * tool's own words. */
function ctl(args) {
    // A native promise: a throw inside a handler of cockpit's own promise
    // escapes as an uncaught error in 287 instead of rejecting.
    return new Promise((resolve, reject) => {
        cockpit.spawn(["nspawnctl", ...args], { superuser: "require", err: "message" })
                .then(resolve, ex => reject(new Error(P.toolError(ex, ex.message))));
    });
}

function showError(msg) {
    $("alert-title").textContent = msg;
    $("alert").hidden = !msg;
}

function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls)
        td.className = cls;
    tr.appendChild(td);
    return td;
}

function button(label, cls, onclick) {
    const b = document.createElement("button");
    b.className = `pf-c-button pf-m-small ${cls}`;
    b.textContent = label;
    b.addEventListener("click", onclick);
    return b;
}

/* A dialog: `fields` are [id, label, kind, value]; resolves with their
 * values when `action` (given them) succeeds, its error shown otherwise. */
function dialog(title, text, fields, okLabel, action, danger) {
    $("m-title").textContent = title;
    const body = $("m-body");
    body.textContent = "";
    if (text) {
        const p = document.createElement("p");
        p.textContent = text;
        body.appendChild(p);
    }
    // PatternFly's form group (a text field) or check (a checkbox).
    for (const [id, label, kind, value] of fields) {
        const group = document.createElement("div");
        const l = document.createElement("label");
        const input = document.createElement("input");
        input.id = id;
        input.type = kind;
        l.htmlFor = id;
        if (kind === "checkbox") {
            group.className = "pf-c-check";
            input.className = "pf-c-check__input";
            input.checked = !!value;
            l.className = "pf-c-check__label";
            l.textContent = label;
            group.append(input, l);
        } else {
            group.className = "pf-c-form__group";
            input.className = "pf-c-form-control";
            input.value = value || "";
            l.className = "pf-c-form__label";
            l.textContent = label;
            const labelBox = document.createElement("div");
            labelBox.className = "pf-c-form__group-label";
            labelBox.appendChild(l);
            const control = document.createElement("div");
            control.className = "pf-c-form__group-control";
            control.appendChild(input);
            group.append(labelBox, control);
        }
        body.appendChild(group);
    }
    const ok = $("m-ok");
    ok.textContent = okLabel;
    ok.className = `pf-c-button ${danger ? "pf-m-danger" : "pf-m-primary"}`;
    $("m-error").hidden = true;
    $("modal").hidden = false;
    const close = () => {
        $("modal").hidden = true;
        ok.onclick = null;
    };
    $("m-cancel").onclick = close;
    body.onsubmit = ev => {
        ev.preventDefault();
        ok.click();
    };
    ok.onclick = () => {
        const values = {};
        for (const [id, , kind] of fields)
            values[id] = kind === "checkbox" ? $(id).checked : $(id).value;
        ok.disabled = true;
        action(values)
                .then(() => {
                    close();
                    refreshAll();
                })
                .catch(e => {
                    $("m-error-title").textContent = e.message;
                    $("m-error").hidden = false;
                })
                .finally(() => { ok.disabled = false });
    };
}

/* ---- machines ---- */

function renderMachines() {
    const rows = P.machineRows(state.list, state.status, state.top, Date.now() * 1000);
    const tbody = $("machines").querySelector("tbody");
    tbody.textContent = "";
    for (const r of rows) {
        const tr = document.createElement("tr");
        tr.dataset.name = r.name;
        tr.className = rowClass(r.name === state.selected);
        cell(tr, r.name, "name");
        cell(tr, r.state, "state");
        cell(tr, r.os);
        cell(tr, r.addresses.join(" ") || "-");
        cell(tr, r.cpu === null ? "-" : `${r.cpu.toFixed(1)}%`, "cpu");
        cell(tr, P.formatBytes(r.memory), "memory");
        cell(tr, P.formatDuration(r.uptime));
        tr.addEventListener("click", () => select(r.name));
        tbody.appendChild(tr);
    }
    $("machines-empty").hidden = rows.length > 0;
    if (state.selected && !rows.some(r => r.name === state.selected))
        select(null);
    renderDetails();
}

/* A clickable row of the machines table, highlighted when selected. */
function rowClass(selected) {
    return selected ? "pf-m-hoverable pf-m-selected" : "pf-m-hoverable";
}

function renderDetails() {
    const name = state.selected;
    $("details").hidden = !name;
    if (!name)
        return;
    const s = state.status[name] || {};
    $("d-name").textContent = name;
    const dl = $("d-status");
    dl.textContent = "";
    const since = s.since ? `${P.formatTime(s.since)} (${P.formatDuration((Date.now() * 1000 - s.since) / 1e6)})` : "-";
    for (const [k, v] of [["State", s.state], ["Since", since], ["Leader", `${s.leader} (${s.leaderComm})`],
        ["Root", s.root], ["OS", s.os], ["Unit", s.unit], ["Interfaces", (s.interfaces || []).join(" ")],
        ["Addresses", (s.addresses || []).join(" ")], ["Machine ID", s.id]]) {
        if (!v)
            continue;
        const group = document.createElement("div");
        group.className = "pf-c-description-list__group";
        const dt = document.createElement("dt");
        dt.className = "pf-c-description-list__term";
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.className = "pf-c-description-list__description";
        dd.textContent = v;
        group.append(dt, dd);
        dl.appendChild(group);
    }
    // Set only on a change, so a reader's scrolling survives the redraw
    // every sample brings; the journal shown from its newest line.
    const setText = (el, text) => {
        if (el.textContent === text)
            return false;
        el.textContent = text;
        return true;
    };
    setText($("d-tree"), P.treeLines(s.processes)
            .map(([depth, text]) => "  ".repeat(depth) + text)
            .join("\n"));
    $("d-journal-box").hidden = !(s.journal && s.journal.length);
    if (setText($("d-journal"), (s.journal || []).join("\n")))
        $("d-journal").scrollTop = $("d-journal").scrollHeight;
    const image = state.images.find(i => i.name === name);
    $("d-enabled").checked = !!(image && image.enabled);
    $("d-enabled").disabled = !image;
    drawGraphs();
}

function drawGraphs() {
    const h = state.history[state.selected] || [];
    NspawnGraph.draw($("g-cpu"), [{ values: h.map(x => x.cpu) }], v => `${v.toFixed(v < 1 ? 2 : 1)}%`);
    NspawnGraph.draw($("g-memory"), [{ values: h.map(x => x.memory) }], P.formatBytes);
    NspawnGraph.draw($("g-io"), [{ values: h.map(x => x.read) }, { values: h.map(x => x.write) }],
                     v => `${P.formatBytes(v)}/s`);
}

function select(name) {
    if (name !== state.selected)
        closeConsole();
    state.selected = name;
    for (const tr of $("machines").querySelectorAll("tbody tr"))
        tr.className = rowClass(tr.dataset.name === name);
    renderDetails();
}

function refreshMachines() {
    return ctl(["list", "--json=short"])
            .then(out => {
                state.list = P.parseMachines(out);
                if (state.list.length === 0)
                    return "[]";
                // The names as the tool listed them; status re-checks each.
                return ctl(["status", "--json=short", "-n", "20", "--", ...state.list.map(m => m.name)])
                        .catch(() => "[]");
            })
            .then(out => {
                state.status = P.parseStatus(out);
                renderMachines();
            })
            .catch(e => showError(e.message));
}

/* `top --follow`: a line of JSON per sample on one channel for as long as
 * the page is open, instead of a process per sample. */
function followTop() {
    let rest = "";
    const proc = cockpit.spawn(["nspawnctl", "top", "--json=short", "--follow", `--delay=${TOP_DELAY}`],
                               { superuser: "require", err: "message" });
    proc.stream(data => {
        const split = P.splitLines(rest, data);
        rest = split.rest;
        for (const line of split.lines) {
            try {
                state.top = P.parseTop(line);
            } catch (e) {
                showError(e.message);
                continue;
            }
            P.addSample(state.history, state.top, Date.now(), KEEP);
            renderMachines();
        }
    });
    proc.catch(ex => {
        showError(P.toolError(ex, ex.message));
        // Started again: the stream ends when the bridge restarts.
        window.setTimeout(followTop, 5000);
    });
}

function signalVerb(verb, confirm) {
    const name = state.selected;
    if (!name)
        return;
    const act = () => ctl([verb, name]);
    if (!confirm) {
        act().then(refreshAll)
                .catch(e => showError(e.message));
        return;
    }
    dialog(`Terminate ${name}?`, "Its processes are killed at once, without a clean shutdown.",
           [], "Terminate", act, true);
}

/* ---- console ---- */

function openConsole(verb) {
    const name = state.selected;
    closeConsole();
    const el = $("console");
    el.hidden = false;
    // Only while this is still the open console: a closed one's end is
    // no news.
    const session = {};
    session.term = NspawnTerminal.open(el, ["nspawnctl", verb, name], problem => {
        if (state.console === session)
            $("c-state").textContent = problem ? `Disconnected: ${problem}` : "Disconnected.";
    });
    state.console = session;
    $("c-state").textContent = `Connected (${verb}).`;
    $("c-close").hidden = false;
    el.scrollIntoView({ block: "nearest" });
    session.term.focus();
}

function closeConsole() {
    if (state.console) {
        state.console.term.close();
        state.console = null;
        $("console").hidden = true;
        $("console").textContent = "";
        $("c-close").hidden = true;
        $("c-state").textContent = "";
    }
}

/* ---- images ---- */

function renderImages() {
    const tbody = $("images").querySelector("tbody");
    tbody.textContent = "";
    for (const i of state.images) {
        const tr = document.createElement("tr");
        tr.dataset.name = i.name;
        cell(tr, i.name, "name");
        cell(tr, i.type);
        cell(tr, P.formatBytes(i.usage));
        const ro = cell(tr, "");
        ro.appendChild(toggle(i.readOnly, "read-only", on =>
            ctl(["read-only", i.name, on ? "yes" : "no"])));
        cell(tr, P.formatTime(i.created));
        const en = cell(tr, "");
        en.appendChild(toggle(i.enabled, "enabled", on => ctl([on ? "enable" : "disable", i.name])));
        const actions = cell(tr, "", "actions");
        actions.append(
            button("Start", "pf-m-secondary start", () => startDialog(i.name)),
            button("Clone", "pf-m-secondary clone", () => dialog(`Clone ${i.name}`, "", [["f-new", "New name", "text", ""]],
                                                                "Clone", v => ctl(["clone", i.name, v["f-new"]]))),
            button("Rename", "pf-m-secondary rename", () => dialog(`Rename ${i.name}`, "", [["f-new", "New name", "text", i.name]],
                                                                  "Rename", v => ctl(["rename", i.name, v["f-new"]]))),
            button("Remove", "pf-m-danger remove", () => dialog(`Remove ${i.name}?`, "The image and its files are deleted.", [],
                                                               "Remove", () => ctl(["remove", i.name]), true)),
        );
        tbody.appendChild(tr);
    }
    $("images-empty").hidden = state.images.length > 0;
}

/* A switch whose change runs `action`; flipped back if it fails. */
function toggle(on, cls, action) {
    const l = document.createElement("label");
    l.className = `pf-c-switch ${cls}`;
    const input = document.createElement("input");
    input.type = "checkbox";
    input.className = "pf-c-switch__input";
    input.checked = on;
    input.setAttribute("aria-label", cls);
    const knob = document.createElement("span");
    knob.className = "pf-c-switch__toggle";
    l.append(input, knob);
    input.addEventListener("change", () => {
        input.disabled = true;
        action(input.checked)
                .then(() => refreshImages())
                .catch(e => {
                    input.checked = !input.checked;
                    showError(e.message);
                })
                .finally(() => { input.disabled = false });
    });
    return l;
}

function startDialog(name) {
    dialog(`Start ${name}`, "Boots the image's init as a machine in the background.",
           [["f-ephemeral", "Ephemeral (a snapshot removed when it ends)", "checkbox", false],
               ["f-veth", "Network: a veth link to the host", "checkbox", true]],
           "Start", v => ctl(P.startArgs(name, { ephemeral: v["f-ephemeral"], veth: v["f-veth"] }).slice(1)));
}

function refreshImages() {
    return ctl(["list-images", "--json=short"])
            .then(out => {
                const images = P.parseImages(out);
                // Rows rebuilt only on a change: a switch or a button
                // being used stays where it is.
                if (JSON.stringify(images) === JSON.stringify(state.images))
                    return;
                state.images = images;
                renderImages();
                renderDetails();
            })
            .catch(e => showError(e.message));
}

/* A pull on a pty: the tool shows its progress only on a terminal. */
function pull(ev) {
    ev.preventDefault();
    const args = P.pullArgs({
        kind: $("p-kind").value,
        url: $("p-url").value.trim(),
        name: $("p-name").value.trim(),
        verify: $("p-verify").value,
    });
    $("p-progress-box").hidden = false;
    $("p-progress").style.width = "0";
    $("p-bar").classList.remove("pf-m-success", "pf-m-danger");
    $("p-percent").textContent = "";
    $("p-log").textContent = "";
    $("p-start").disabled = true;
    let text = "";
    const proc = cockpit.spawn(args, { superuser: "require", pty: true, window: { rows: 24, cols: 200 } });
    proc.stream(data => {
        text += data;
        $("p-log").textContent = P.ptyLines(text);
        const pct = P.pullProgress(text);
        if (pct !== null) {
            $("p-progress").style.width = `${pct}%`;
            $("p-percent").textContent = `${pct}%`;
        }
    });
    proc.then(() => {
        $("p-progress").style.width = "100%";
        $("p-bar").classList.add("pf-m-success");
        $("p-percent").textContent = "Done.";
        showError("");
    })
            .catch(ex => {
                const msg = P.toolError(ex, P.ptyLines(text));
                $("p-percent").textContent = "Failed.";
                $("p-bar").classList.add("pf-m-danger");
                showError(msg);
            })
            .finally(() => {
                $("p-start").disabled = false;
                refreshImages();
            });
}

/* ---- wiring ---- */

function refreshAll() {
    return Promise.all([refreshMachines(), refreshImages()]);
}

function showPage(page) {
    for (const t of document.querySelectorAll(".pf-c-tabs__link"))
        t.parentElement.classList.toggle("pf-m-current", t.dataset.page === page);
    $("page-machines").hidden = page !== "machines";
    $("page-images").hidden = page !== "images";
}

function init() {
    for (const t of document.querySelectorAll(".pf-c-tabs__link"))
        t.addEventListener("click", () => showPage(t.dataset.page));
    $("d-poweroff").addEventListener("click", () => signalVerb("poweroff", false));
    $("d-reboot").addEventListener("click", () => signalVerb("reboot", false));
    $("d-terminate").addEventListener("click", () => signalVerb("terminate", true));
    $("d-enabled").addEventListener("change", ev => {
        const on = ev.target.checked;
        ctl([on ? "enable" : "disable", state.selected])
                .then(refreshImages)
                .catch(e => {
                    ev.target.checked = !on;
                    showError(e.message);
                });
    });
    $("c-login").addEventListener("click", () => openConsole("login"));
    $("c-shell").addEventListener("click", () => openConsole("shell"));
    $("c-close").addEventListener("click", closeConsole);
    $("pull").addEventListener("submit", pull);
    refreshAll();
    followTop();
    window.setInterval(refreshMachines, 3000);
    window.setInterval(refreshImages, 15000);
    document.body.dataset.ready = "1";
}

cockpit.transport.wait(init);
