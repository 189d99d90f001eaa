/* A minimal terminal for the console: cockpit 287 ships xterm.js only
 * inside its own page bundles (systemd/terminal.js), not as a component a
 * package can load, so this draws what a login or shell writes on a pty
 * as lines of text and turns key presses into the bytes a terminal sends.
 * Cursor motion beyond one line is ignored; colours are dropped. Pure
 * (no DOM) but for `attach`, so `node --test` checks the screen. */
(function (root, factory) {
    if (typeof module === "object" && module.exports)
        module.exports = factory();
    else
        root.NspawnTerminal = factory();
}(typeof self !== "undefined" ? self : this, function () {
    "use strict";

    class Screen {
        constructor(maxLines = 500) {
            this.lines = [""];
            this.col = 0;
            this.maxLines = maxLines;
            // An escape sequence cut between two reads waits here.
            this.pending = "";
        }

        put(ch) {
            const i = this.lines.length - 1;
            const l = this.lines[i];
            this.lines[i] = l.slice(0, this.col).padEnd(this.col) + ch + l.slice(this.col + 1);
            this.col++;
        }

        newline() {
            this.lines.push("");
            this.col = 0;
            while (this.lines.length > this.maxLines)
                this.lines.shift();
        }

        feed(data) {
            const s = this.pending + data;
            this.pending = "";
            for (let i = 0; i < s.length; i++) {
                const c = s[i];
                if (c === "\x1b") {
                    const rest = s.slice(i);
                    // CSI: ESC [ params final; OSC: ESC ] ... BEL or ST.
                    let m = /^\x1b\[[0-?]*[ -/]*[@-~]/.exec(rest) ||
                            /^\x1b\][^\x07\x1b]*(\x07|\x1b\\)/.exec(rest) ||
                            /^\x1b[()][0-9A-Za-z]/.exec(rest) ||
                            /^\x1b[=>78c]/.exec(rest);
                    if (!m) {
                        if (rest.length < 32 && !/[\x07@-~]/.test(rest.slice(2))) {
                            this.pending = rest;
                            return;
                        }
                        continue;
                    }
                    this.control(m[0]);
                    i += m[0].length - 1;
                } else if (c === "\r") {
                    this.col = 0;
                } else if (c === "\n") {
                    this.newline();
                } else if (c === "\b") {
                    this.col = Math.max(0, this.col - 1);
                } else if (c === "\t") {
                    do this.put(" "); while (this.col % 8);
                } else if (c >= " " && c !== "\x7f") {
                    this.put(c);
                }
            }
        }

        /* The sequences a shell's line editing uses on the current line. */
        control(seq) {
            const m = /^\x1b\[([0-9;?]*)([A-Za-z@])$/.exec(seq);
            if (!m)
                return;
            const n = parseInt(m[1], 10) || 1;
            const i = this.lines.length - 1;
            switch (m[2]) {
            case "K": // erase to the end of the line (the modes 1, 2 as 0)
                this.lines[i] = this.lines[i].slice(0, this.col);
                break;
            case "J":
                if (m[1] === "2" || m[1] === "3") {
                    this.lines = [""];
                    this.col = 0;
                }
                break;
            case "C":
                this.col += n;
                break;
            case "D":
                this.col = Math.max(0, this.col - n);
                break;
            case "G":
                this.col = n - 1;
                break;
            case "P":
                this.lines[i] = this.lines[i].slice(0, this.col) + this.lines[i].slice(this.col + n);
                break;
            }
        }

        text() {
            return this.lines.join("\n");
        }
    }

    /* The bytes a key press sends, or null for keys a terminal ignores. */
    function keyBytes(ev) {
        const special = {
            Enter: "\r",
            Backspace: "\x7f",
            Tab: "\t",
            Escape: "\x1b",
            ArrowUp: "\x1b[A",
            ArrowDown: "\x1b[B",
            ArrowRight: "\x1b[C",
            ArrowLeft: "\x1b[D",
            Home: "\x1b[H",
            End: "\x1b[F",
            Delete: "\x1b[3~",
        };
        if (ev.key in special)
            return special[ev.key];
        if (ev.ctrlKey && !ev.altKey && /^[a-zA-Z]$/.test(ev.key))
            return String.fromCharCode(ev.key.toUpperCase().charCodeAt(0) - 64);
        if (ev.key && ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey)
            return ev.key;
        return null;
    }

    /* Show `screen` in `el` and send keys typed there with `send`. */
    function attach(el, screen, send) {
        el.tabIndex = 0;
        const draw = () => {
            el.textContent = screen.text();
            el.scrollTop = el.scrollHeight;
        };
        el.addEventListener("keydown", ev => {
            const b = keyBytes(ev);
            if (b !== null) {
                ev.preventDefault();
                send(b);
            }
        });
        el.addEventListener("paste", ev => {
            ev.preventDefault();
            send(ev.clipboardData.getData("text"));
        });
        return { feed: data => { screen.feed(data); draw() }, draw };
    }

    return { Screen, keyBytes, attach };
}));
