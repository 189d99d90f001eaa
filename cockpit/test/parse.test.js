// The page's reading of nspawnctl's JSON and its terminal, with Node's
// own test runner: node --test cockpit/test/
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const P = require("../nspawn/parse.js");

test("list: machinectl's keys, null addresses as none", () => {
    const m = P.parseMachines('[{"machine":"a","class":"container","service":"nspawn","os":"busybox","version":"-","addresses":null},' +
                              '{"machine":"b","class":"container","service":"nspawn","os":"debian","version":"12","addresses":["10.0.0.2"]}]');
    assert.equal(m.length, 2);
    assert.deepEqual(m[0].addresses, []);
    assert.deepEqual(m[1].addresses, ["10.0.0.2"]);
    assert.equal(m[1].version, "12");
});

test("a document that is not an array is refused, saying what", () => {
    assert.throws(() => P.parseMachines('{"machine":"a"}'), /machine list: not a JSON array/);
    assert.throws(() => P.parseImages("nspawnctl: oops"), /cannot read the image list/);
});

test("status: per machine, the tree and the journal", () => {
    const s = P.parseStatus(JSON.stringify([{
        machine: "deb", id: "ab", class: "container", service: "nspawn", state: "running",
        since: 1700000000000000, leader: 42, leader_comm: "systemd", root: "/var/lib/machines/deb",
        interfaces: ["ve-deb"], addresses: [], os: "debian", version: "12",
        pretty_name: "Debian GNU/Linux 12 (bookworm)", unit: "machine-deb.scope",
        processes: { cgroup: "machine-deb.scope", processes: [],
                     children: [{ cgroup: "payload", processes: [{ pid: 42, cmdline: "/sbin/init" }], children: [] }] },
        journal: ["Dec 02 host systemd[1]: Started."],
    }]));
    assert.equal(s.deb.os, "Debian GNU/Linux 12 (bookworm)");
    assert.equal(s.deb.leaderComm, "systemd");
    assert.deepEqual(P.treeLines(s.deb.processes), [[0, "payload"], [1, "42 /sbin/init"]]);
    assert.equal(s.deb.journal.length, 1);
});

test("top: a sample per line, split across reads", () => {
    let { lines, rest } = P.splitLines("", '[{"machine":"a","tasks":2,"cpu_percent":12.5,"memory_bytes":4096,');
    assert.deepEqual(lines, []);
    ({ lines, rest } = P.splitLines(rest, '"read_bytes_per_second":null,"write_bytes_per_second":1.0}]\n[]\n'));
    assert.equal(lines.length, 2);
    assert.equal(rest, "");
    const t = P.parseTop(lines[0]);
    assert.equal(t.a.cpu, 12.5);
    assert.equal(t.a.read, null);
    assert.deepEqual(P.parseTop(lines[1]), {});
});

test("the machines table joins list, status and top", () => {
    const list = P.parseMachines('[{"machine":"a","class":"container","service":"nspawn","os":"busybox","version":null,"addresses":null}]');
    const rows = P.machineRows(list, { a: { state: "running", since: 1e15, os: "" } },
                               { a: { cpu: 1.5, memory: 2048 } }, 1e15 + 90e6);
    assert.deepEqual(rows[0], { name: "a", state: "running", os: "busybox", addresses: [], cpu: 1.5, memory: 2048, uptime: 90 });
    const bare = P.machineRows(list, {}, {}, 0)[0];
    assert.equal(bare.cpu, null);
    assert.equal(bare.uptime, null);
});

test("history keeps the last samples and forgets ended machines", () => {
    const h = {};
    for (let i = 0; i < 5; i++)
        P.addSample(h, { a: { cpu: i, memory: 1 }, b: { cpu: 0, memory: 1 } }, i, 3);
    assert.deepEqual(h.a.map(s => s.cpu), [2, 3, 4]);
    P.addSample(h, { a: { cpu: 9, memory: 1 } }, 6, 3);
    assert.equal(h.b, undefined);
});

test("images: list-images keys and our enabled", () => {
    const i = P.parseImages('[{"name":"img","type":"directory","ro":false,"usage":1536,"created":1700000000000000,"modified":null,"enabled":true}]');
    assert.deepEqual(i[0], { name: "img", type: "directory", readOnly: false, usage: 1536,
                             created: 1700000000000000, modified: null, enabled: true });
    assert.equal(P.formatBytes(i[0].usage), "1.5K");
    assert.equal(P.formatTime(i[0].created), "2023-11-14 22:13:20 UTC");
});

test("pull progress and errors as the tool worded them", () => {
    assert.equal(P.pullProgress("\r\x1b[KGot 12% of http://h/x.tar. 1.0M at 1.0M/s.\r\x1b[KGot 57% of http://h/x.tar."), 57);
    assert.equal(P.pullProgress("Imported image 'x'."), null);
    assert.equal(P.toolError(new Error("exited 1"), "nspawnctl: Invalid machine name: a/b\n"), "nspawnctl: Invalid machine name: a/b");
    assert.equal(P.toolError(new Error("not-found"), ""), "not-found");
});

test("argument lists keep user input as operands", () => {
    assert.deepEqual(P.pullArgs({ kind: "tar", url: "--force", name: "", verify: "no" }),
                     ["nspawnctl", "pull-tar", "--verify=no", "--", "--force"]);
    assert.deepEqual(P.pullArgs({ kind: "raw", url: "http://h/d.raw", name: "d", verify: "checksum" }),
                     ["nspawnctl", "pull-raw", "--verify=checksum", "--", "http://h/d.raw", "d"]);
    assert.deepEqual(P.startArgs("m", { ephemeral: true, veth: false }),
                     ["nspawnctl", "start", "m", "--ephemeral", "--network-veth=no"]);
});

test("durations and bytes", () => {
    assert.equal(P.formatDuration(59), "59s");
    assert.equal(P.formatDuration(125), "2min 5s");
    assert.equal(P.formatDuration(3 * 3600 + 60), "3h 1min");
    assert.equal(P.formatDuration(2 * 86400 + 3600), "2d 1h");
    assert.equal(P.formatBytes(null), "-");
    assert.equal(P.formatBytes(1023), "1023B");
    assert.equal(P.formatBytes(3 * 1024 * 1024 * 1024), "3.0G");
});

test("pty output as lines: rewritten lines, escapes dropped", () => {
    assert.equal(P.ptyLines("\x1b[1mGot 1% of u.\x1b[0m\rGot 50% of u.\r\nDone\r\n"),
                 "Got 50% of u.\nDone\n");
    assert.equal(P.ptyLines("\x1b]0;title\x07a\r\nb"), "a\nb");
});
