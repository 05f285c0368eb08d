// The embedding map: points coloured by class on a canvas, each sample's thumbnail on hover.
// Its data comes from the JSON element #map-data; thumbnails are cells of one inlined sprite image.
(function () {
  "use strict";
  const holder = document.getElementById("map-data");
  const canvas = document.getElementById("map-canvas");
  if (!holder || !canvas) return;
  const data = JSON.parse(holder.textContent);
  const ctx = canvas.getContext("2d");
  const size = canvas.width, pad = 12;
  const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
    "#31a354", "#756bb1", "#636363"];
  const color = (c) => colors[c % colors.length];
  const px = (i) => pad + data.x[i] * (size - 2 * pad);
  const py = (i) => pad + (1 - data.y[i]) * (size - 2 * pad);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  const radius = data.x.length > 3000 ? 1.5 : 3;
  ctx.globalAlpha = 0.75;
  for (let i = 0; i < data.x.length; i++) {
    ctx.fillStyle = color(data.c[i]);
    ctx.beginPath();
    ctx.arc(px(i), py(i), radius, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.globalAlpha = 1;
  canvas.dataset.drawn = String(data.x.length);

  const legend = document.getElementById("map-legend");
  data.names.forEach((name, c) => {
    const span = document.createElement("span");
    const dot = document.createElement("i");
    dot.style.background = color(c);
    span.append(dot, document.createTextNode(name));
    legend.append(span);
  });

  const tip = document.getElementById("map-tip");
  const thumb = tip.querySelector("canvas");
  const label = tip.querySelector("span");
  const sprite = new Image();
  let spriteReady = false;
  sprite.onload = () => { spriteReady = true; };
  if (data.sprite) sprite.src = data.sprite;
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const mx = (event.clientX - box.left) * (size / box.width), my = (event.clientY - box.top) * (size / box.height);
    let best = -1, bestD = 64;
    for (let i = 0; i < data.x.length; i++) {
      const d = (px(i) - mx) ** 2 + (py(i) - my) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    }
    if (best < 0) { tip.style.display = "none"; return; }
    label.textContent = data.names[data.c[best]] + " (sample " + data.id[best] + ")";
    thumb.width = data.cell; thumb.height = data.cell;
    const tctx = thumb.getContext("2d");
    tctx.clearRect(0, 0, data.cell, data.cell);
    if (spriteReady) {
      const per = data.per_row, k = best;
      tctx.drawImage(sprite, (k % per) * data.cell, Math.floor(k / per) * data.cell, data.cell, data.cell,
        0, 0, data.cell, data.cell);
    }
    tip.style.display = "block";
    tip.style.left = (event.clientX - box.left + 14) + "px";
    tip.style.top = (event.clientY - box.top + 14) + "px";
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
})();
