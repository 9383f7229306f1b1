// twinsep viewer: layers, clipping plane, distance tool, CT slices with the owner overlay,
// and WebXR. Everything it needs is inlined in the page (no network, works from file://).
// World coordinates shown to the user are LPS millimetres; the glTF scene is in metres with
// +Y up, and DATA.lps_to_scene (row-major 4x4) maps LPS mm to scene coordinates.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { VRButton } from 'three/addons/webxr/VRButton.js';

const DATA = JSON.parse(document.getElementById('twinsep-data').textContent);
const statusEl = document.getElementById('status');

function setStatus(text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle('error', isError);
}

function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// --- coordinate frames ------------------------------------------------------------------
const lpsToGltf = new THREE.Matrix4().set(...DATA.lps_to_scene);
const root = new THREE.Group();  // holds the glTF scene; moved in front of the user in VR
root.name = 'twinsep-root';

function lpsToScene(p) {
  root.updateMatrixWorld(true);
  const m = new THREE.Matrix4().multiplyMatrices(root.matrixWorld, lpsToGltf);
  return new THREE.Vector3(p[0], p[1], p[2]).applyMatrix4(m);
}

function sceneToLps(v) {
  root.updateMatrixWorld(true);
  const m = new THREE.Matrix4().multiplyMatrices(root.matrixWorld, lpsToGltf).invert();
  const q = v.clone().applyMatrix4(m);
  return [q.x, q.y, q.z];
}

function distanceMm(a, b) {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

const fmt = (p) => '[' + p.map((v) => v.toFixed(1)).join(', ') + ']';

// --- renderer, camera, lights ----------------------------------------------------------
const viewport = document.getElementById('viewport');
const renderer = new THREE.WebGLRenderer({ antialias: true });
renderer.setPixelRatio(window.devicePixelRatio || 1);
renderer.localClippingEnabled = true;
renderer.xr.enabled = true;
renderer.outputColorSpace = THREE.SRGBColorSpace;
viewport.appendChild(renderer.domElement);

const scene = new THREE.Scene();
scene.background = new THREE.Color(0x1d2026);
scene.add(root);
const camera = new THREE.PerspectiveCamera(35, 1, 0.001, 100);
scene.add(camera);
scene.add(new THREE.HemisphereLight(0xffffff, 0x404048, 1.4));
const keyLight = new THREE.DirectionalLight(0xffffff, 1.6);
keyLight.position.set(0.4, 0.6, 1.0);
camera.add(keyLight);
const lightTarget = new THREE.Object3D();
scene.add(lightTarget);
keyLight.target = lightTarget;

const controls = new OrbitControls(camera, renderer.domElement);
controls.enableDamping = false;

let renderQueued = false;
function render() {
  renderQueued = false;
  renderer.render(scene, camera);
}
function requestRender() {
  if (renderer.xr.isPresenting || renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}
controls.addEventListener('change', requestRender);

function resize() {
  const w = Math.max(1, viewport.clientWidth);
  const h = Math.max(1, viewport.clientHeight);
  renderer.setSize(w, h, false);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
  render();
}
window.addEventListener('resize', () => {
  resize();
  for (const view of ['axial', 'coronal', 'sagittal']) drawSlice(view);
});

// --- layers -----------------------------------------------------------------------------
const layers = new Map();  // name -> {def, object, materials, visible, opacity}
const modelCentre = new THREE.Vector3();
const modelBox = new THREE.Box3();
const clipPlane = new THREE.Plane(new THREE.Vector3(0, -1, 0), 0);
const clip = { enabled: false, axis: 'z', position: 0, flip: false };
// 'joined': the scan as it is; 'separated': each child after the cut with its implant,
// expanders and wound (layers of manifest stage 'separated', in the separated frame)
const STAGE_TITLES = { joined: 'Joined (the scan)', separated: 'Separated (after the cut)' };
let stage = 'joined';

function layerStage(layer) {
  return layer.def.stage || 'joined';
}

function shown(layer) {
  return layer.visible && layerStage(layer) === stage;
}

function objectForNode(gltf, nodeName) {
  const nodes = gltf.parser.json.nodes || [];
  const index = nodes.findIndex((n) => n.name === nodeName);
  if (index < 0) return null;
  let found = null;
  gltf.scene.traverse((obj) => {
    const assoc = gltf.parser.associations.get(obj);
    if (!found && assoc && assoc.nodes === index) found = obj;
  });
  return found;
}

function applyOpacity(layer) {
  for (const mat of layer.materials) {
    mat.opacity = layer.opacity;
    mat.transparent = layer.opacity < 0.999;
    mat.depthWrite = layer.opacity >= 0.999;
    mat.needsUpdate = true;
  }
}

function setVisible(name, visible) {
  const layer = layers.get(name);
  if (!layer) throw new Error('no layer ' + name);
  layer.visible = !!visible;
  layer.object.visible = shown(layer);
  const box = document.querySelector(`.layer[data-layer="${CSS.escape(name)}"] input[type=checkbox]`);
  if (box) box.checked = layer.visible;
  render();
}

function setOpacity(name, opacity) {
  const layer = layers.get(name);
  if (!layer) throw new Error('no layer ' + name);
  layer.opacity = Math.min(1, Math.max(0, Number(opacity)));
  applyOpacity(layer);
  const slider = document.querySelector(`.layer[data-layer="${CSS.escape(name)}"] input[type=range]`);
  if (slider) slider.value = String(layer.opacity);
  render();
}

const GROUP_TITLES = { A: 'Twin A (purple)', B: 'Twin B (orange)', shared: 'Shared', '': 'Other' };

function buildLayerList() {
  const host = document.getElementById('layers');
  host.textContent = '';
  const groups = new Map();
  for (const layer of layers.values()) {
    if (layerStage(layer) !== stage) continue;
    const twin = layer.def.twin || (layer.name.startsWith('shared/') ? 'shared' : '');
    const key = twin in GROUP_TITLES ? twin : '';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(layer);
  }
  for (const key of ['A', 'B', 'shared', '']) {
    if (!groups.has(key)) continue;
    const h = document.createElement('h4');
    h.textContent = GROUP_TITLES[key];
    host.appendChild(h);
    for (const layer of groups.get(key)) {
      const row = document.createElement('div');
      row.className = 'layer';
      row.dataset.layer = layer.name;
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = layer.visible;
      box.title = 'show ' + layer.name;
      box.addEventListener('change', () => setVisible(layer.name, box.checked));
      const sw = document.createElement('span');
      sw.className = 'sw';
      const c = layer.def.colour_rgb || [200, 200, 200];
      sw.style.background = `rgb(${c[0]},${c[1]},${c[2]})`;
      const label = document.createElement('span');
      label.className = 'name';
      const short = layer.name.includes('/') ? layer.name.split('/').pop() : layer.name;
      label.textContent = layer.def.twin ? (layer.def.tissue === 'expander' ? short : (layer.def.tissue || short)) : short;
      label.title = layer.name + (layer.def.volume_ml ? ` (${layer.def.volume_ml} ml)` : '');
      const slider = document.createElement('input');
      slider.type = 'range';
      slider.min = '0';
      slider.max = '1';
      slider.step = '0.05';
      slider.value = String(layer.opacity);
      slider.title = 'opacity of ' + layer.name;
      slider.addEventListener('input', () => setOpacity(layer.name, slider.value));
      row.append(box, sw, label, slider);
      host.appendChild(row);
    }
  }
}

// --- clipping plane ----------------------------------------------------------------------
const AXES = { x: 0, y: 1, z: 2 };
let lpsBox = { min: [0, 0, 0], max: [0, 0, 0] };

function updateClip() {
  const axis = AXES[clip.axis];
  const n = [0, 0, 0];
  n[axis] = clip.flip ? 1 : -1;  // keep the side below the plane unless flipped
  const p0 = sceneToLps(modelCentre);
  p0[axis] = clip.position;
  const q0 = lpsToScene(p0);
  const p1 = p0.slice();
  p1[0] += n[0]; p1[1] += n[1]; p1[2] += n[2];
  const normal = lpsToScene(p1).sub(q0).normalize();
  clipPlane.setFromNormalAndCoplanarPoint(normal, q0);
  const planes = clip.enabled ? [clipPlane] : [];
  for (const layer of layers.values()) {
    for (const mat of layer.materials) {
      mat.clippingPlanes = planes;
      mat.needsUpdate = true;
    }
  }
  const slider = document.getElementById('clip-position');
  slider.min = String(Math.floor(lpsBox.min[axis]));
  slider.max = String(Math.ceil(lpsBox.max[axis]));
  slider.value = String(clip.position);
  document.getElementById('clip-value').textContent =
    `${clip.axis} = ${clip.position.toFixed(1)} mm`;
  document.getElementById('clip-enabled').checked = clip.enabled;
  document.getElementById('clip-axis').value = clip.axis;
  document.getElementById('clip-flip').checked = clip.flip;
  render();
}

function setClip(opts = {}) {
  if ('axis' in opts) {
    if (!(opts.axis in AXES)) throw new Error('axis must be x, y or z');
    if (opts.axis !== clip.axis && !('position_mm' in opts)) {
      const a = AXES[opts.axis];
      clip.position = 0.5 * (lpsBox.min[a] + lpsBox.max[a]);
    }
    clip.axis = opts.axis;
  }
  if ('position_mm' in opts) clip.position = Number(opts.position_mm);
  if ('enabled' in opts) clip.enabled = !!opts.enabled;
  if ('flip' in opts) clip.flip = !!opts.flip;
  updateClip();
  return { ...clip };
}

function isClipped(point) {
  return clip.enabled && clipPlane.distanceToPoint(point) < 0;
}

// --- distance tool ----------------------------------------------------------------------
const markers = new THREE.Group();
markers.name = 'twinsep-markers';
scene.add(markers);
const measure = { active: false, points: [], distance_mm: null };
let markerRadius = 0.002;

function pickableObjects() {
  return [...layers.values()].filter(shown).map((l) => l.object);
}

function pick(clientX, clientY) {
  const rect = renderer.domElement.getBoundingClientRect();
  const ndc = new THREE.Vector2(
    ((clientX - rect.left) / rect.width) * 2 - 1,
    -((clientY - rect.top) / rect.height) * 2 + 1,
  );
  const ray = new THREE.Raycaster();
  ray.setFromCamera(ndc, camera);
  for (const hit of ray.intersectObjects(pickableObjects(), true)) {
    if (!hit.object.isMesh || isClipped(hit.point)) continue;
    return sceneToLps(hit.point);
  }
  return null;
}

function project(p) {
  const v = lpsToScene(p).project(camera);
  const rect = renderer.domElement.getBoundingClientRect();
  return {
    x: rect.left + ((v.x + 1) / 2) * rect.width,
    y: rect.top + ((1 - v.y) / 2) * rect.height,
    depth: v.z,
  };
}

function drawMeasurement() {
  markers.clear();
  const mat = new THREE.MeshBasicMaterial({ color: 0x00e5ff, depthTest: false });
  const pts = measure.points.map((p) => lpsToScene(p));
  for (const q of pts) {
    const s = new THREE.Mesh(new THREE.SphereGeometry(markerRadius, 16, 12), mat);
    s.position.copy(q);
    s.renderOrder = 10;
    markers.add(s);
  }
  if (pts.length === 2) {
    const g = new THREE.BufferGeometry().setFromPoints(pts);
    const line = new THREE.Line(g, new THREE.LineBasicMaterial({ color: 0x00e5ff, depthTest: false }));
    line.renderOrder = 10;
    markers.add(line);
  }
  const out = document.getElementById('distance');
  out.textContent = measure.distance_mm === null ? '–' : `${measure.distance_mm.toFixed(1)} mm`;
  document.getElementById('measure-points').textContent =
    measure.points.map((p, i) => `P${i + 1} ${fmt(p)}`).join('  ');
  render();
}

function addPoint(p) {
  if (measure.points.length >= 2) {
    measure.points = [];
    measure.distance_mm = null;
  }
  measure.points.push(p);
  if (measure.points.length === 2) {
    measure.distance_mm = distanceMm(measure.points[0], measure.points[1]);
  }
  drawMeasurement();
}

function measureBetween(a, b) {
  measure.points = [a.map(Number), b.map(Number)];
  measure.distance_mm = distanceMm(measure.points[0], measure.points[1]);
  drawMeasurement();
  return measure.distance_mm;
}

function clearMeasurement() {
  measure.points = [];
  measure.distance_mm = null;
  drawMeasurement();
}

function setMeasureMode(on) {
  measure.active = !!on;
  const btn = document.getElementById('measure-toggle');
  btn.setAttribute('aria-pressed', String(measure.active));
  renderer.domElement.style.cursor = measure.active ? 'crosshair' : '';
}

let downAt = null;
renderer.domElement.addEventListener('pointerdown', (e) => { downAt = [e.clientX, e.clientY]; });
renderer.domElement.addEventListener('pointerup', (e) => {
  if (!measure.active || !downAt) return;
  const moved = Math.hypot(e.clientX - downAt[0], e.clientY - downAt[1]);
  downAt = null;
  if (moved > 4) return;  // a drag rotates the view
  const p = pick(e.clientX, e.clientY);
  if (p) addPoint(p);
});

// --- CT slices ---------------------------------------------------------------------------
const slices = { ready: false, overlay: true, index: { axial: 0, coronal: 0, sagittal: 0 } };

function sliceGeometry() {
  const [nk, nj, ni] = DATA.slices.shape_kji;
  const [si, sj, sk] = DATA.slices.spacing_mm;
  return { nk, nj, ni, si, sj, sk };
}

function indexToLps(i, j, k) {
  const a = DATA.slices.affine;
  return [0, 1, 2].map((r) => a[4 * r] * i + a[4 * r + 1] * j + a[4 * r + 2] * k + a[4 * r + 3]);
}

function drawSlice(view) {
  if (!slices.ready) return;
  const { nk, nj, ni, si, sj, sk } = sliceGeometry();
  const canvas = document.getElementById('slice-' + view);
  const idx = slices.index[view];
  let w, h, aspect, at;
  // array planes of the LPS-reoriented grid, in radiological display:
  // axial (k): i across (patient right on the left), j down (anterior on top);
  // coronal (j): i across, k up; sagittal (i): j across (anterior on the left), k up.
  if (view === 'axial') {
    w = ni; h = nj; aspect = (ni * si) / (nj * sj);
    at = (x, y) => (idx * nj + y) * ni + x;
  } else if (view === 'coronal') {
    w = ni; h = nk; aspect = (ni * si) / (nk * sk);
    at = (x, y) => ((nk - 1 - y) * nj + idx) * ni + x;
  } else {
    w = nj; h = nk; aspect = (nj * sj) / (nk * sk);
    at = (x, y) => ((nk - 1 - y) * nj + x) * ni + idx;
  }
  canvas.width = w;
  canvas.height = h;
  // fit the panel width and a third of the window height, keeping the physical aspect
  const availW = Math.max(60, canvas.parentElement.clientWidth);
  const availH = Math.max(60, (window.innerHeight - 160) / 3 - 40);
  const cssW = Math.min(availW, availH * aspect);
  canvas.style.width = `${Math.round(cssW)}px`;
  canvas.style.height = `${Math.round(cssW / aspect)}px`;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  const px = img.data;
  const colours = { 1: DATA.twin_colours.A, 2: DATA.twin_colours.B };
  const alpha = slices.overlay ? 0.45 : 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const n = at(x, y);
      const g = slices.ct[n];
      const o = (y * w + x) * 4;
      const c = alpha > 0 ? colours[slices.owner[n]] : undefined;
      if (c) {
        px[o] = g * (1 - alpha) + c[0] * alpha;
        px[o + 1] = g * (1 - alpha) + c[1] * alpha;
        px[o + 2] = g * (1 - alpha) + c[2] * alpha;
      } else {
        px[o] = px[o + 1] = px[o + 2] = g;
      }
      px[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  const p = view === 'axial' ? indexToLps(0, 0, idx)
    : view === 'coronal' ? indexToLps(0, idx, 0) : indexToLps(idx, 0, 0);
  const axis = view === 'axial' ? 2 : view === 'coronal' ? 1 : 0;
  const name = view === 'axial' ? 'k' : view === 'coronal' ? 'j' : 'i';
  document.getElementById('label-' + view).textContent =
    `${name} = ${idx}  (${'xyz'[axis]} ≈ ${p[axis].toFixed(1)} mm)`;
}

function setSlice(view, index) {
  if (!slices.ready) return;
  const { nk, nj, ni } = sliceGeometry();
  const n = view === 'axial' ? nk : view === 'coronal' ? nj : ni;
  slices.index[view] = Math.min(n - 1, Math.max(0, Math.round(Number(index))));
  document.getElementById('slider-' + view).value = String(slices.index[view]);
  drawSlice(view);
}

function sliceClick(view, e) {
  const canvas = e.currentTarget;
  const r = canvas.getBoundingClientRect();
  const x = Math.floor(((e.clientX - r.left) / r.width) * canvas.width);
  const y = Math.floor(((e.clientY - r.top) / r.height) * canvas.height);
  const { nk } = sliceGeometry();
  if (view === 'axial') { setSlice('sagittal', x); setSlice('coronal', y); }
  if (view === 'coronal') { setSlice('sagittal', x); setSlice('axial', nk - 1 - y); }
  if (view === 'sagittal') { setSlice('coronal', x); setSlice('axial', nk - 1 - y); }
}

async function loadSlices() {
  const panel = document.getElementById('slices');
  if (!DATA.slices) {
    panel.hidden = true;
    document.getElementById('layout').style.gridTemplateColumns = '260px 1fr';
    return;
  }
  slices.ct = await gunzip(b64ToBytes(DATA.slices.ct));
  slices.owner = await gunzip(b64ToBytes(DATA.slices.owner));
  const { nk, nj, ni } = sliceGeometry();
  if (slices.ct.length !== nk * nj * ni || slices.owner.length !== nk * nj * ni) {
    throw new Error('CT slice data has the wrong size');
  }
  slices.ready = true;
  // start at the centre of the owner map (the junction region), else the grid centre
  let cnt = 0, si = 0, sj = 0, sk = 0;
  for (let k = 0; k < nk; k += 2) for (let j = 0; j < nj; j += 2) for (let i = 0; i < ni; i += 2) {
    if (slices.owner[(k * nj + j) * ni + i]) { cnt++; si += i; sj += j; sk += k; }
  }
  const start = cnt ? { axial: sk / cnt, coronal: sj / cnt, sagittal: si / cnt }
    : { axial: nk / 2, coronal: nj / 2, sagittal: ni / 2 };
  const sizes = { axial: nk, coronal: nj, sagittal: ni };
  for (const view of ['axial', 'coronal', 'sagittal']) {
    const slider = document.getElementById('slider-' + view);
    slider.max = String(sizes[view] - 1);
    slider.addEventListener('input', () => setSlice(view, slider.value));
    document.getElementById('slice-' + view).addEventListener('click', (e) => sliceClick(view, e));
    setSlice(view, start[view]);
  }
  document.getElementById('overlay-toggle').addEventListener('change', (e) => {
    slices.overlay = e.target.checked;
    for (const view of ['axial', 'coronal', 'sagittal']) drawSlice(view);
  });
}

// --- WebXR ------------------------------------------------------------------------------
function setupXR() {
  document.getElementById('viewport').appendChild(VRButton.createButton(renderer));
  renderer.xr.addEventListener('sessionstart', () => {
    // put the model (real size) at chest height half a metre in front of the user
    root.position.set(0, 0, 0);
    root.updateMatrixWorld(true);
    const c = modelCentre.clone();
    root.position.set(-c.x, 1.3 - c.y, -0.6 - c.z);
    updateClip();
    drawMeasurement();
    renderer.setAnimationLoop(render);
  });
  renderer.xr.addEventListener('sessionend', () => {
    renderer.setAnimationLoop(null);
    root.position.set(0, 0, 0);
    updateClip();
    drawMeasurement();
    resize();
  });
}

// --- start ------------------------------------------------------------------------------
function fitCamera() {
  modelBox.makeEmpty();
  for (const layer of layers.values()) {
    if (layerStage(layer) === stage) modelBox.expandByObject(layer.object);
  }
  if (modelBox.isEmpty()) modelBox.setFromObject(root);
  modelBox.getCenter(modelCentre);
  const sphere = modelBox.getBoundingSphere(new THREE.Sphere());
  const r = Math.max(sphere.radius, 1e-3);
  const dist = (r / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2))) * 1.02;
  // anterior view: glTF +Z is the patient's front, +Y superior
  camera.position.copy(modelCentre).add(new THREE.Vector3(0, 0, dist));
  camera.up.set(0, 1, 0);
  camera.near = dist / 100;
  camera.far = dist * 10;
  camera.updateProjectionMatrix();
  controls.target.copy(modelCentre);
  controls.update();
  lightTarget.position.copy(modelCentre);
  markerRadius = r / 120;
  const corners = [];
  for (const x of [modelBox.min.x, modelBox.max.x]) for (const y of [modelBox.min.y, modelBox.max.y])
    for (const z of [modelBox.min.z, modelBox.max.z]) corners.push(sceneToLps(new THREE.Vector3(x, y, z)));
  lpsBox = {
    min: [0, 1, 2].map((a) => Math.min(...corners.map((c) => c[a]))),
    max: [0, 1, 2].map((a) => Math.max(...corners.map((c) => c[a]))),
  };
}

function resetView() {
  fitCamera();
  render();
}

function stages() {
  const present = new Set([...layers.values()].map(layerStage));
  return Object.keys(STAGE_TITLES).filter((s) => present.has(s));
}

function setStage(name) {
  if (!stages().includes(name)) throw new Error(`no stage ${name} (have ${stages().join(', ')})`);
  stage = name;
  for (const layer of layers.values()) layer.object.visible = shown(layer);
  for (const radio of document.querySelectorAll('input[name=stage]')) radio.checked = radio.value === stage;
  clearMeasurement();
  buildLayerList();
  fitCamera();
  const a = AXES[clip.axis];
  clip.position = 0.5 * (lpsBox.min[a] + lpsBox.max[a]);
  updateClip();
  return stage;
}

function buildStagePanel() {
  const panel = document.getElementById('stage-panel');
  const host = document.getElementById('stages');
  if (!panel || !host) return;
  host.textContent = '';
  const list = stages();
  panel.hidden = list.length < 2;
  for (const name of list) {
    const label = document.createElement('label');
    const radio = document.createElement('input');
    radio.type = 'radio';
    radio.name = 'stage';
    radio.value = name;
    radio.checked = name === stage;
    radio.addEventListener('change', () => { if (radio.checked) setStage(name); });
    label.append(radio, ' ' + STAGE_TITLES[name]);
    host.appendChild(label);
  }
}

async function loadScene() {
  const glb = DATA.glb_gzip ? await gunzip(b64ToBytes(DATA.glb_gzip)) : b64ToBytes(DATA.glb);
  const gltf = await new GLTFLoader().parseAsync(glb.buffer, '');
  root.add(gltf.scene);
  const manifestLayers = (DATA.manifest && DATA.manifest.layers) || [];
  for (const def of manifestLayers) {
    const nodeName = def.node || def.name;
    const object = objectForNode(gltf, nodeName);
    if (!object) {
      console.warn(`twinsep: layer ${def.name}: node ${nodeName} not in the scene`);
      continue;
    }
    const materials = [];
    object.traverse((o) => {
      if (!o.isMesh) return;
      const list = Array.isArray(o.material) ? o.material : [o.material];
      const cloned = list.map((m) => {
        const c = m.clone();
        c.side = THREE.DoubleSide;
        materials.push(c);
        return c;
      });
      o.material = Array.isArray(o.material) ? cloned : cloned[0];
    });
    const visible = def.visible !== false;
    const opacity = typeof def.opacity === 'number' ? def.opacity : 1;
    const layer = { name: def.name, def, object, materials, visible, opacity };
    object.visible = shown(layer);
    applyOpacity(layer);
    layers.set(def.name, layer);
  }
  buildStagePanel();
  buildLayerList();
  fitCamera();
  clip.position = 0.5 * (lpsBox.min[2] + lpsBox.max[2]);
  updateClip();
}

function bindControls() {
  document.getElementById('clip-enabled').addEventListener('change', (e) => setClip({ enabled: e.target.checked }));
  document.getElementById('clip-flip').addEventListener('change', (e) => setClip({ flip: e.target.checked }));
  document.getElementById('clip-axis').addEventListener('change', (e) => setClip({ axis: e.target.value }));
  document.getElementById('clip-position').addEventListener('input', (e) => setClip({ position_mm: Number(e.target.value) }));
  document.getElementById('measure-toggle').addEventListener('click', () => setMeasureMode(!measure.active));
  document.getElementById('measure-clear').addEventListener('click', clearMeasurement);
  window.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === 'm') setMeasureMode(!measure.active);
    if (e.key === 'r') resetView();
  });
}

// The scripting API (used by the tests; handy from the browser console too).
const api = {
  ready: false,
  error: null,
  threeVersion: THREE.REVISION,
  layers: () => [...layers.values()].map((l) => ({
    name: l.name, twin: l.def.twin ?? null, tissue: l.def.tissue ?? null,
    stage: layerStage(l), visible: l.visible, opacity: l.opacity,
    objectVisible: l.object.visible,
  })),
  stages,
  setStage,
  getStage: () => stage,
  setVisible,
  setOpacity,
  setClip,
  getClip: () => ({ ...clip, bounds_mm: lpsBox }),
  measure: measureBetween,
  clearMeasurement,
  setMeasureMode,
  get distance_mm() { return measure.distance_mm; },
  get points_mm() { return measure.points.map((p) => p.slice()); },
  pick,
  project,
  lpsToScene: (p) => lpsToScene(p).toArray(),
  sceneToLps: (v) => sceneToLps(new THREE.Vector3(...v)),
  setSlice,
  getSlices: () => ({ ...slices.index, shape_kji: DATA.slices ? DATA.slices.shape_kji : null }),
  resetView,
  render,
};
window.twinsep = api;

async function main() {
  bindControls();
  resize();
  await loadScene();
  await loadSlices();
  setupXR();
  resize();
  api.ready = true;
  document.body.dataset.ready = '1';
  setStatus(`${layers.size} layers · three.js r${THREE.REVISION}`);
}

main().catch((err) => {
  api.error = String(err && err.stack ? err.stack : err);
  setStatus('error: ' + err, true);
  document.body.dataset.ready = 'error';
  console.error(err);
});
