/* The console: xterm.js (vendor/, fetched by scripts/cockpit-vendor) on a
 * cockpit stream channel that runs a command on a pty, as Cockpit's own
 * terminal does: what xterm's keyboard handling produces is sent on the
 * channel, what the channel brings is written to xterm, and the size the
 * fit addon gives the terminal reaches the pty as the channel's `window`
 * control message (the bridge sets it with TIOCSWINSZ, so the program
 * gets SIGWINCH). Full-screen programs draw because xterm is a complete
 * terminal emulator. */
/* global cockpit, Terminal, FitAddon */
(function (root) {
    "use strict";

    /* Run `argv` as the superuser on a pty shown in `el`. `onClose(problem)`
     * is called once when the program ends (problem null) or the channel
     * fails. Returns { close, focus, size }. */
    function open(el, argv, onClose) {
        const term = new Terminal({
            cursorBlink: true,
            // An installed font: xterm measures the cell once, at open,
            // before a web font would have loaded.
            fontFamily: '"Liberation Mono", "DejaVu Sans Mono", monospace',
            fontSize: 14,
            scrollback: 1000,
            theme: { background: "#000000", foreground: "#ffffff" },
        });
        const fit = new FitAddon.FitAddon();
        term.loadAddon(fit);
        term.open(el);
        fit.fit();

        const channel = cockpit.channel({
            payload: "stream",
            spawn: argv,
            pty: true,
            superuser: "require",
            environ: ["TERM=xterm-256color"],
            window: { rows: term.rows, cols: term.cols },
        });
        const showSize = () => {
            el.dataset.rows = term.rows;
            el.dataset.cols = term.cols;
        };
        showSize();
        let ended = false;
        let disposed = false;
        channel.addEventListener("message", (ev, data) => term.write(data));
        channel.addEventListener("close", (ev, options) => {
            ended = true;
            if (disposed)
                return;
            const problem = options.problem || null;
            if (problem)
                term.write(`\r\n\x1b[31m${problem}\x1b[m\r\n`);
            onClose(problem);
        });
        term.onData(data => { if (!ended) channel.send(data) });
        term.onResize(({ rows, cols }) => {
            showSize();
            if (!ended)
                channel.control({ window: { rows, cols } });
        });
        // The box follows the page's width: refit when it changes.
        const observer = new ResizeObserver(() => fit.fit());
        observer.observe(el);

        return {
            close() {
                disposed = true;
                observer.disconnect();
                if (!ended) {
                    ended = true;
                    channel.close();
                }
                term.dispose();
            },
            focus: () => term.focus(),
        };
    }

    root.NspawnTerminal = { open };
}(self));
