/* What the page reads from nspawnctl's JSON, as pure functions: no DOM,
 * no cockpit, so `node --test` checks them (cockpit/test/parse.test.js).
 * Loaded by the page as a plain script (global `NspawnParse`) and by Node
 * as a CommonJS module; no build step either way. */
(function (root, factory) {
    if (typeof module === "object" && module.exports)
        module.exports = factory();
    else
        root.NspawnParse = factory();
}(typeof self !== "undefined" ? self : this, function () {
    "use strict";

    /* A JSON document that must be an array (list, list-images, status,
     * one top sample): anything else is the tool misbehaving, said once. */
    function parseArray(text, what) {
        let v;
        try {
            v = JSON.parse(text);
        } catch (e) {
            throw new Error(`cannot read ${what}: ${e.message}`);
        }
        if (!Array.isArray(v))
            throw new Error(`cannot read ${what}: not a JSON array`);
        return v;
    }

    /* `nspawnctl list --json=short`: machinectl's keys. */
    function parseMachines(text) {
        return parseArray(text, "the machine list").map(m => ({
            name: String(m.machine),
            class: m.class || "",
            service: m.service || "",
            os: m.os || "",
            version: m.version || "",
            // machinectl's null for none
            addresses: Array.isArray(m.addresses) ? m.addresses : [],
        }));
    }

    /* `nspawnctl status --json=short NAME...`: one object per machine. */
    function parseStatus(text) {
        const out = {};
        for (const s of parseArray(text, "the machine status")) {
            out[s.machine] = {
                name: s.machine,
                id: s.id || "",
                state: s.state || "",
                since: typeof s.since === "number" ? s.since : null,
                leader: s.leader,
                leaderComm: s.leader_comm || "",
                root: s.root || "",
                interfaces: s.interfaces || [],
                addresses: s.addresses || [],
                os: s.pretty_name || s.os || "",
                unit: s.unit || "",
                processes: s.processes || null,
                journal: Array.isArray(s.journal) ? s.journal : [],
            };
        }
        return out;
    }

    /* One sample of `nspawnctl top --json=short --follow`: a line. */
    function parseTop(line) {
        const out = {};
        for (const r of parseArray(line, "a top sample")) {
            out[r.machine] = {
                tasks: r.tasks,
                cpu: r.cpu_percent,
                memory: r.memory_bytes,
                read: r.read_bytes_per_second,
                write: r.write_bytes_per_second,
            };
        }
        return out;
    }

    /* A stream's data arrives in pieces: whole lines out, the rest kept. */
    function splitLines(buffer, data) {
        const text = buffer + data;
        const parts = text.split("\n");
        const rest = parts.pop();
        return { lines: parts.filter(l => l.trim() !== ""), rest };
    }

    /* `nspawnctl list-images --json=short`. */
    function parseImages(text) {
        return parseArray(text, "the image list").map(i => ({
            name: String(i.name),
            type: i.type || "",
            readOnly: !!i.ro,
            usage: typeof i.usage === "number" ? i.usage : null,
            created: typeof i.created === "number" ? i.created : null,
            modified: typeof i.modified === "number" ? i.modified : null,
            enabled: !!i.enabled,
        }));
    }

    /* The machines table: the list, each machine's status and its latest
     * top sample, joined by name. */
    function machineRows(list, status, top, nowUsec) {
        return list.map(m => {
            const s = status[m.name] || {};
            const t = top[m.name] || {};
            return {
                name: m.name,
                state: s.state || "running",
                os: s.os || [m.os, m.version].filter(Boolean).join(" "),
                addresses: m.addresses,
                cpu: typeof t.cpu === "number" ? t.cpu : null,
                memory: typeof t.memory === "number" ? t.memory : null,
                uptime: s.since ? Math.max(0, (nowUsec - s.since) / 1e6) : null,
            };
        });
    }

    /* Samples per machine for the graphs, the oldest dropped past `keep`. */
    function addSample(history, sample, time, keep) {
        for (const [name, v] of Object.entries(sample)) {
            const h = history[name] || (history[name] = []);
            h.push({ time, cpu: v.cpu, memory: v.memory, read: v.read, write: v.write });
            while (h.length > keep)
                h.shift();
        }
        for (const name of Object.keys(history))
            if (!(name in sample))
                delete history[name];
        return history;
    }

    /* The process tree of `status --json` as indented lines, like
     * systemd-cgls: [depth, text]. */
    function treeLines(node, depth = 0, out = []) {
        if (!node)
            return out;
        for (const p of node.processes || [])
            out.push([depth, `${p.pid} ${p.cmdline}`]);
        for (const c of node.children || []) {
            out.push([depth, c.cgroup]);
            treeLines(c, depth + 1, out);
        }
        return out;
    }

    /* The last progress a pull printed on its terminal ("Got 42% of
     * URL. ..."), or null; the tool rewrites the line with \r. */
    function pullProgress(text) {
        const re = /Got (\d+)% of /g;
        let m, last = null;
        while ((m = re.exec(text)) !== null)
            last = Number(m[1]);
        return last;
    }

    /* The lines a terminal shows for the output of a program that only
     * writes lines (a pull): escape sequences dropped, a line rewritten
     * after \r shown as its last version. */
    function ptyLines(text) {
        return String(text)
                .replace(/\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78c]/g, "")
                .split("\n")
                .map(l => l.replace(/\r+$/, "").split("\r").pop())
                .join("\n");
    }

    /* What a failed nspawnctl said, as it worded it: its stderr's last
     * non-empty line, else the error cockpit gives. */
    function toolError(ex, stderr) {
        const lines = String(stderr || "").split(/\r?\n/)
                .map(l => l.trim())
                .filter(Boolean);
        if (lines.length)
            return lines[lines.length - 1];
        if (ex && ex.message)
            return ex.message;
        return String(ex);
    }

    /* Bytes as the tools print them: powers of 1024, one decimal. */
    function formatBytes(n) {
        if (n === null || n === undefined)
            return "-";
        const units = ["B", "K", "M", "G", "T", "P"];
        let i = 0;
        let v = n;
        while (v >= 1024 && i < units.length - 1) {
            v /= 1024;
            i++;
        }
        return i === 0 ? `${Math.round(v)}B` : `${v.toFixed(1)}${units[i]}`;
    }

    function formatDuration(secs) {
        if (secs === null || secs === undefined)
            return "-";
        const s = Math.floor(secs);
        const d = Math.floor(s / 86400);
        const h = Math.floor(s / 3600) % 24;
        const m = Math.floor(s / 60) % 60;
        if (d > 0)
            return `${d}d ${h}h`;
        if (h > 0)
            return `${h}h ${m}min`;
        if (m > 0)
            return `${m}min ${s % 60}s`;
        return `${s % 60}s`;
    }

    function formatTime(usec) {
        if (usec === null || usec === undefined)
            return "-";
        return new Date(usec / 1000).toISOString()
                .replace("T", " ")
                .replace(/\.\d+Z$/, " UTC");
    }

    /* The arguments of a start from the image dialog. */
    function startArgs(name, opts) {
        const args = ["nspawnctl", "start", name];
        if (opts.ephemeral)
            args.push("--ephemeral");
        args.push(`--network-veth=${opts.veth ? "yes" : "no"}`);
        return args;
    }

    /* The arguments of a pull from the pull form; the name left out when
     * empty, so the tool derives it (or says it cannot). */
    function pullArgs(form) {
        const verb = form.kind === "raw" ? "pull-raw" : "pull-tar";
        const args = ["nspawnctl", verb, `--verify=${form.verify || "signature"}`];
        if (form.force)
            args.push("--force");
        // "--" so a URL or name that starts with "-" is an operand the tool
        // checks, not an option.
        args.push("--", form.url);
        if (form.name)
            args.push(form.name);
        return args;
    }

    return {
        parseMachines,
        parseStatus,
        parseTop,
        parseImages,
        splitLines,
        machineRows,
        addSample,
        treeLines,
        pullProgress,
        toolError,
        ptyLines,
        formatBytes,
        formatDuration,
        formatTime,
        startArgs,
        pullArgs,
    };
}));
