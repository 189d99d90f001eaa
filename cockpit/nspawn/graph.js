/* Line graphs on a canvas for the last minutes of `nspawnctl top`
 * samples: one or two series, scaled to their largest value. */
(function (root) {
    "use strict";

    function draw(canvas, series, format) {
        const ctx = canvas.getContext("2d");
        const w = canvas.width;
        const h = canvas.height;
        ctx.clearRect(0, 0, w, h);
        ctx.strokeStyle = "#d2d2d2";
        ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
        const values = series.flatMap(s => s.values).filter(v => typeof v === "number");
        const max = Math.max(1e-9, ...values);
        const colors = ["#0066cc", "#3e8635"];
        series.forEach((s, k) => {
            const n = s.values.length;
            if (n < 2)
                return;
            ctx.strokeStyle = colors[k % colors.length];
            ctx.lineWidth = 1.5;
            ctx.beginPath();
            s.values.forEach((v, i) => {
                const x = (i / (n - 1)) * (w - 2) + 1;
                const y = h - 2 - ((v || 0) / max) * (h - 16);
                if (i === 0)
                    ctx.moveTo(x, y);
                else
                    ctx.lineTo(x, y);
            });
            ctx.stroke();
        });
        ctx.fillStyle = "#151515";
        ctx.font = "11px sans-serif";
        ctx.fillText(`max ${format(values.length ? max : 0)}`, 4, 12);
    }

    root.NspawnGraph = { draw };
}(typeof self !== "undefined" ? self : this));
