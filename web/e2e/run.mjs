// End-to-end test of the web client: a real `qiao serve` (the binary with the client built
// in) on a loopback port and a fresh data directory, driven through Debian's Chromium by
// playwright-core. Two people chat in real time; threads, reactions, edits and deletions
// reach the other side; a second device's unread badge appears and clears; the server
// restarts while clients are connected and nothing sent meanwhile is lost; the zh-CN UI
// shows Chinese; phone-size layout works; no console errors.
//
//   QIAO_BIN=target/debug/qiao node e2e/run.mjs
//   QIAO_SCREENSHOTS=../docs/screenshots   also saves screenshots of the main screens there
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const BIN = resolve(process.env.QIAO_BIN ?? "../target/debug/qiao");
const SHOTS = process.env.QIAO_SCREENSHOTS ? resolve(process.env.QIAO_SCREENSHOTS) : resolve("test-results");
const BROWSER = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const T = 15_000;
mkdirSync(SHOTS, { recursive: true });

const dataDir = mkdtempSync(join(tmpdir(), "qiao-e2e-"));
let server = null;
let serverOut = "";

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on("error", fail);
  });
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;

async function startServer() {
  server = spawn(BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  const collect = (d) => (serverOut += d.toString());
  server.stdout.on("data", collect);
  server.stderr.on("data", collect);
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error("qiao serve did not become ready:\n" + serverOut);
}

async function stopServer() {
  if (!server) return;
  const exited = new Promise((ok) => server.once("exit", ok));
  server.kill("SIGTERM");
  await exited;
  server = null;
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
let step = "start";
function log(s) {
  step = s;
  console.log(`  · ${s}`);
}

const consoleErrors = [];
let tolerateNetworkErrors = false;
function watch(page, who) {
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    // While the server restarts, the browser itself reports the failed reconnects.
    if (tolerateNetworkErrors && /WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource|Failed to fetch/.test(text)) return;
    consoleErrors.push(`${who}: ${text}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${who}: ${e.message}`));
  page.on("dialog", (d) => void d.accept());
}

async function newPage(browser, who, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US", ...opts });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  watch(page, who);
  return page;
}

const see = (page, text) => page.getByText(text, { exact: false }).first().waitFor({ timeout: T });
const gone = (locator) => locator.first().waitFor({ state: "detached", timeout: T });
const msg = (page, text) => page.locator("section.timeline article.msg", { hasText: text }).first();

async function signIn(page, login, password) {
  await page.goto(base + "/");
  await page.getByLabel(/Username or e-mail|用户名或邮箱/).fill(login);
  await page.getByLabel(/^Password$|^密码$/).fill(password);
  await page.getByRole("button", { name: /^Sign in$|^登录$/ }).click();
}

async function shot(page, name) {
  await sleep(300); // let fonts and the last frame settle
  await page.screenshot({ path: join(SHOTS, name) });
}

let browser;
try {
  await startServer();
  const link = serverOut.match(/(http:\/\/\S+\/setup#token=\S+)/)?.[1];
  if (!link) throw new Error("no setup link printed:\n" + serverOut);
  browser = await chromium.launch({
    executablePath: BROWSER,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
  });

  log("the owner completes first-run setup from the printed link");
  const a = await newPage(browser, "owner");
  await a.goto(link);
  await a.getByLabel("Organisation name").fill("Acme 桥");
  await a.getByLabel("Username").fill("wangfang");
  await a.getByLabel("Display name").fill("王芳");
  await a.getByLabel("Password").fill("owner-password-1");
  await shot(a, "setup.png");
  await a.getByRole("button", { name: "Create owner and sign in" }).click();
  await see(a, "Acme 桥");
  await a.getByRole("navigation").getByRole("heading", { name: /^Channels/ }).waitFor();

  log("the owner creates a second user from the admin page");
  await a.getByRole("link", { name: "Users" }).click();
  const form = a.getByRole("form", { name: "New user" });
  await form.getByLabel("Username").fill("lilei");
  await form.getByLabel("Display name").fill("李雷");
  await form.getByLabel("Job title").fill("Sales engineer");
  await form.getByRole("button", { name: "Create user" }).click();
  const notice = await a.getByRole("status").filter({ hasText: "Temporary password" }).textContent({ timeout: T });
  const temp = notice.match(/: (\S+) \(shown once\)/)?.[1];
  if (!temp) throw new Error("no temporary password in: " + notice);
  await shot(a, "admin-users.png");

  log("the second user signs in and chooses a password");
  const b = await newPage(browser, "lilei");
  await signIn(b, "lilei", temp);
  await b.getByLabel("Temporary password").fill(temp);
  await b.getByLabel("New password").fill("lilei-password-1");
  await b.getByRole("button", { name: "Set password and continue" }).click();
  await b.getByRole("navigation").getByRole("heading", { name: /^Channels/ }).waitFor();

  log("the owner creates a channel with the second user in it");
  await a.getByRole("button", { name: "New channel" }).click();
  const dialog = a.getByRole("dialog", { name: "New channel" });
  await dialog.getByLabel("Name").fill("项目-general");
  await dialog.getByLabel("Topic").fill("Everything about the 桥 project");
  await dialog.getByPlaceholder("Add people").fill("li");
  await dialog.getByRole("button", { name: /李雷/ }).click();
  await dialog.getByRole("button", { name: "Create" }).click();
  await a.getByRole("heading", { name: "项目-general" }).waitFor();

  log("the channel appears for the second user in real time, and they chat");
  await b.getByRole("link", { name: /项目-general/ }).click();
  await b.getByRole("heading", { name: "项目-general" }).waitFor();
  const composerA = a.getByRole("textbox", { name: /Message 项目-general/ });
  const composerB = b.getByRole("textbox", { name: /Message 项目-general/ });
  await composerA.fill("Hello 李雷 👋 welcome to **Qiao**");
  await composerA.press("Enter");
  await see(b, "welcome to");
  await composerB.fill("你好！Shift+Enter makes");
  await composerB.press("Shift+Enter");
  await composerB.type("a second line");
  await composerB.press("Enter");
  await see(a, "a second line");
  // Their message arrived: they are no longer typing it (not 6 s later).
  await a.getByText("李雷 is typing…").waitFor({ state: "hidden", timeout: 1000 });

  log("presence: the other person's avatar shows them online, then busy while they turn on do-not-disturb");
  await msg(a, "a second line").locator(".avatar .dot.online").waitFor({ timeout: T });
  const dnd = b.getByRole("button", { name: "Do not disturb" });
  await dnd.click();
  await msg(a, "a second line").locator(".avatar .dot.dnd").waitFor({ timeout: T });
  if ((await dnd.getAttribute("aria-pressed")) !== "true") throw new Error("the do-not-disturb button is not pressed");
  await dnd.click();
  await msg(a, "a second line").locator(".avatar .dot.online").waitFor({ timeout: T });
  // The members panel (a virtualised list) shows them, with their presence too.
  await a.getByRole("button", { name: /^Members · 2$/ }).click();
  const members = a.getByRole("complementary", { name: "Members" });
  await members.getByRole("listitem").filter({ hasText: "李雷" }).locator(".avatar .dot.online").waitFor({ timeout: T });
  await shot(a, "members-panel.png");
  await a.getByRole("button", { name: /^Members · 2$/ }).click();

  log("@-autocomplete, by the name's pinyin initials, inserts a mention");
  await composerA.fill("thanks @ll");
  await a.getByRole("option", { name: /李雷/ }).waitFor();
  await composerA.press("Enter");
  await composerA.type("see you");
  await composerA.press("Enter");
  await b.locator(".mention", { hasText: "@李雷" }).first().waitFor();
  // What was typed straight after choosing stays after the mention.
  await b.locator("article.msg", { hasText: "thanks @李雷 see you" }).first().waitFor();

  log("Ctrl+K jumps to a conversation by the pinyin initials of its name");
  await b.getByRole("link", { name: "Settings and devices" }).click();
  await b.getByRole("heading", { name: "项目-general" }).waitFor({ state: "detached", timeout: T });
  await b.keyboard.press("Control+k");
  const jump = b.getByRole("dialog", { name: "Jump to…" });
  await jump.getByRole("combobox").fill("xm");
  await jump.getByRole("option", { name: /项目-general/ }).waitFor();
  await jump.getByRole("combobox").press("Enter");
  await b.getByRole("heading", { name: "项目-general" }).waitFor();

  log("thread reply");
  await msg(b, "welcome to").hover();
  await msg(b, "welcome to").getByRole("button", { name: "Reply in thread" }).click();
  const reply = b.getByRole("textbox", { name: "Reply…" });
  await reply.fill("a reply in the thread");
  await reply.press("Enter");
  await msg(a, "welcome to").getByRole("button", { name: "1 reply" }).waitFor();
  // The first reply made the root's author follow the thread: it is new in their Threads list.
  const threadsLink = a.getByRole("link", { name: /^Threads/ });
  await threadsLink.getByText("1", { exact: true }).waitFor({ timeout: T });
  await threadsLink.click();
  await a.getByRole("heading", { name: "Threads I follow" }).waitFor();
  const followedThread = a.locator(".threads-page a.result.unread", { hasText: "welcome to" });
  await followedThread.waitFor();
  await shot(a, "threads.png");
  await followedThread.click();
  await a.locator("aside.thread").getByText("a reply in the thread").waitFor();
  await shot(a, "conversation-thread.png");
  // Read there, it is new no more (on every device: the server says so to all of them).
  await gone(threadsLink.locator(".badge"));
  await a.getByRole("button", { name: "Close thread" }).click();
  await b.getByRole("button", { name: "Close thread" }).click();

  log("reaction");
  await msg(a, "a second line").hover();
  await msg(a, "a second line").getByRole("button", { name: "Add reaction" }).click();
  await a.getByRole("menuitem", { name: "👍" }).click();
  await msg(b, "a second line").getByRole("button", { name: "👍 1" }).waitFor();

  log("edit and delete");
  await msg(a, "welcome to").hover();
  await msg(a, "welcome to").getByRole("button", { name: "Edit" }).click();
  const edit = a.getByRole("textbox", { name: "Edit" });
  await edit.fill("Hello everyone, edited");
  await edit.press("Enter");
  await msg(b, "Hello everyone, edited").getByText("(edited)").waitFor();
  await composerA.fill("this one will be deleted");
  await composerA.press("Enter");
  await see(b, "this one will be deleted");
  await msg(a, "this one will be deleted").hover();
  await msg(a, "this one will be deleted").getByRole("button", { name: "Delete" }).click();
  await see(b, "This message was deleted.");
  await gone(b.getByText("this one will be deleted"));

  log("an image dropped on the conversation appears as a preview on the other screen");
  await a.evaluate(async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 800;
    canvas.height = 500;
    const g = canvas.getContext("2d");
    g.fillStyle = "#1f6feb";
    g.fillRect(0, 0, 800, 500);
    g.fillStyle = "#fff";
    g.font = "bold 120px sans-serif";
    g.fillText("桥 Qiao", 140, 300);
    const blob = await new Promise((ok) => canvas.toBlob(ok, "image/png"));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], "bridge.png", { type: "image/png" }));
    const zone = document.querySelector("section.timeline");
    for (const type of ["dragenter", "dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  });
  await a.locator(".attachments li.done", { hasText: "bridge.png" }).waitFor();
  await composerA.press("Enter");
  const preview = b.locator(".message-files img[alt='bridge.png']").first();
  await preview.waitFor();
  await b.waitForFunction((el) => el.complete && el.naturalWidth === 320, await preview.elementHandle());
  await preview.click();
  await b.getByRole("dialog", { name: "bridge.png" }).locator("img").waitFor();
  // An image within the preview's size is shown as sent (800 px), not as its 320 px thumbnail.
  await b.waitForFunction(() => {
    const img = document.querySelector("[role=dialog] img");
    return img && img.complete && img.naturalWidth === 800;
  });
  await shot(b, "image-viewer.png");
  await b.keyboard.press("Escape");

  log("a voice message recorded on one side plays on the other");
  await b.getByRole("button", { name: "Record a voice message" }).click();
  // 1.5 s or more recorded, by the recorder's own clock (the microphone may take a while to start).
  const stopButton = b.getByRole("button", { name: "Stop and send" });
  await stopButton.filter({ hasText: /\d+:(0[2-9]|[1-5]\d)/ }).waitFor({ timeout: T });
  await stopButton.click();
  const voice = a.locator("audio[aria-label='Voice message']").last();
  await voice.waitFor();
  await a.waitForFunction(
    async (el) => {
      if (el.paused) await el.play().catch(() => undefined);
      // …and the player knows its length (a browser's WebM recording says none by itself).
      return el.currentTime > 0.2 && Number.isFinite(el.duration);
    },
    await voice.elementHandle(),
    { timeout: T, polling: 200 },
  );
  await a.getByRole("button", { name: "Files", exact: true }).click();
  await a.locator("aside").getByText("bridge.png").waitFor();
  await shot(a, "files-library.png");
  await a.getByRole("button", { name: "Files", exact: true }).click();

  log("a second device of the same user: the unread badge appears and clears");
  const b2 = await newPage(browser, "lilei-phone");
  await signIn(b2, "lilei", "lilei-password-1");
  await b2.getByRole("navigation").getByRole("heading", { name: /^Channels/ }).waitFor();
  await b.getByRole("link", { name: "Directory" }).click(); // leave the channel on device 1
  await b.getByRole("heading", { name: "Directory" }).waitFor();
  await composerA.fill("are you there?");
  await composerA.press("Enter");
  const badge = b2.getByRole("link", { name: /项目-general/ }).locator(".badge");
  await badge.filter({ hasText: "1" }).waitFor();
  await b.getByRole("link", { name: /项目-general/ }).click();
  await see(b, "are you there?");
  await gone(badge);

  log("a draft typed on one device shows on the other, and sending it clears it on both");
  await b2.getByRole("link", { name: /项目-general/ }).click();
  const composerB2 = b2.getByRole("textbox", { name: /Message 项目-general/ });
  await composerB2.fill("写到一半的草稿 from the phone");
  await b.waitForFunction(
    () => document.querySelector("textarea")?.value === "写到一半的草稿 from the phone",
    null,
    { timeout: T, polling: 200 },
  );
  await composerB.press("Enter");
  await see(b2, "写到一半的草稿 from the phone");
  await b2.waitForFunction(() => document.querySelector("textarea")?.value === "", null, { timeout: T, polling: 200 });

  log("the server restarts while both are connected; a message sent meanwhile arrives");
  tolerateNetworkErrors = true;
  await stopServer();
  await b.getByRole("status").filter({ hasText: "Disconnected" }).waitFor();
  await composerA.fill("sent while the server was down");
  await composerA.press("Enter");
  await msg(a, "sent while the server was down").waitFor();
  // A draft typed while the server is away cannot be saved; the page is reloaded as soon as
  // the server is back (before its connection is): the draft is kept and saved then.
  await composerB2.fill("离线时写的草稿");
  await sleep(1500); // the save after typing pauses, which fails
  await startServer();
  await b2.reload();
  await b2.waitForFunction(() => document.querySelector("textarea")?.value === "离线时写的草稿", null, {
    timeout: T,
    polling: 200,
  });
  await b.waitForFunction(() => document.querySelector("textarea")?.value === "离线时写的草稿", null, {
    timeout: T,
    polling: 200,
  });
  await composerB.fill("");
  await b2.waitForFunction(() => document.querySelector("textarea")?.value === "", null, { timeout: T, polling: 200 });
  await see(b, "sent while the server was down");
  await gone(b.getByRole("status").filter({ hasText: /Disconnected|Connecting/ }));
  await gone(a.locator("article.msg.pending"));
  tolerateNetworkErrors = false;
  // Presence comes back with the connections.
  await msg(b, "are you there?").locator(".avatar .dot.online").waitFor({ timeout: T });
  await msg(a, "写到一半的草稿").locator(".avatar .dot.online").waitFor({ timeout: T });
  await shot(b, "conversation.png");

  log("scrolling up loads older messages without moving what is on screen");
  const token = (
    await fetch(base + "/api/v1/auth/sign-in", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ login: "wangfang", password: "owner-password-1", mode: "bearer" }),
    }).then((r) => r.json())
  ).token;
  const call = async (method, path, body) => {
    for (;;) {
      const r = await fetch(base + "/api/v1" + path, { method, headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
      const json = await r.json();
      if (r.status === 429) await sleep((json.retry_after ?? 1) * 1000); // the per-person send rate
      else if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
      else return json;
    }
  };
  const history = await call("POST", "/conversations", { name: "history", kind: "private" });
  for (let i = 1; i <= 120; i++) await call("POST", `/conversations/${history.conversation.id}/messages`, { body: `history message ${i}`, client_key: `h${i}` });
  await a.goto(`${base}/c/${history.conversation.id}`);
  await see(a, "history message 120");
  // The latest page is 71–120. Scroll up as a reader would until 21–70 load in front: the
  // messages on screen must stay on screen (71 was the top one), not be pushed away.
  const loaded70 = a.locator("article.msg .body p", { hasText: /^history message 70$/ }).first();
  for (let i = 0; i < 100 && !(await loaded70.count()); i++) {
    await a.evaluate(async () => {
      document.querySelector(".messages > div").scrollBy(0, -120);
      await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
    });
  }
  await loaded70.waitFor({ state: "attached" });
  await sleep(300);
  // Without anchoring, the new page would fill the screen (messages 21 and on); anchored, the
  // reader still sees the messages around 71 that were there before.
  const firstOnScreen = await a.evaluate(() => {
    const box = document.querySelector(".messages > div").getBoundingClientRect();
    const p = [...document.querySelectorAll(".messages article.msg .body p")].find((e) => e.getBoundingClientRect().top >= box.top);
    return Number(p?.textContent.replace("history message ", ""));
  });
  if (!(firstOnScreen >= 60 && firstOnScreen <= 80)) throw new Error(`the view jumped when older messages loaded: message ${firstOnScreen} is now at the top`);

  log("removed from a private channel while reading it: it says so instead of loading forever");
  const lileiId = (await call("GET", "/users?q=lilei")).items[0].id;
  const secret = (await call("POST", "/conversations", { name: "secret 机密", kind: "private", member_ids: [lileiId] })).conversation;
  await b.getByRole("link", { name: /secret 机密/ }).click();
  await b.getByRole("heading", { name: "secret 机密" }).waitFor();
  tolerateNetworkErrors = true; // the page asks for it once more, and is told 404
  const removed = await fetch(`${base}/api/v1/conversations/${secret.id}/members/${lileiId}`, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
  if (removed.status !== 204) throw new Error(`removing lilei: ${removed.status}`);
  await b.getByText("This conversation does not exist or you cannot see it.").waitFor({ timeout: T });
  await b.getByRole("link", { name: /secret 机密/ }).waitFor({ state: "detached", timeout: T });
  tolerateNetworkErrors = false;
  await b.getByRole("link", { name: /项目-general/ }).click();

  log("an external partner (a guest) signs in, sees the channel shared with them and who wrote what");
  const guestUser = (await call("POST", "/users", { username: "partner", display_name: "Partner 伙伴", role: "guest", password: "partner-password-1" })).user;
  const shared = (await call("POST", "/conversations", { name: "supplier 供应商", kind: "private", member_ids: [guestUser.id] })).conversation;
  await call("POST", `/conversations/${shared.id}/messages`, { body: "welcome, partner", client_key: "g1" });
  const g = await newPage(browser, "guest");
  await signIn(g, "partner", "partner-password-1");
  await g.getByRole("link", { name: /supplier 供应商/ }).click();
  await msg(g, "welcome, partner").getByText("王芳", { exact: true }).first().waitFor({ timeout: T });
  await g.getByRole("textbox", { name: /Message supplier 供应商/ }).fill("thanks, 王芳");
  await g.getByRole("textbox", { name: /Message supplier 供应商/ }).press("Enter");
  await g.locator("article.msg:not(.pending)", { hasText: "thanks, 王芳" }).waitFor({ timeout: T });
  if (await g.getByRole("link", { name: "Directory" }).count()) throw new Error("a guest is offered the directory");
  // …and the presence of the people it shares the channel with.
  await msg(g, "welcome, partner").locator(".avatar .dot.online").waitFor({ timeout: T });
  await shot(g, "guest.png");
  await g.context().close();

  log("directory and departments");
  await a.getByRole("link", { name: "Directory" }).click();
  await a.getByRole("button", { name: /李雷/ }).click();
  await a.getByRole("dialog", { name: "李雷" }).getByText("Sales engineer").waitFor();
  await shot(a, "profile-card.png");
  await a.keyboard.press("Escape");

  log("search finds Chinese text and opens the message in its conversation");
  await a.getByRole("search").first().getByRole("textbox").fill("你好");
  await a.getByRole("search").first().getByRole("textbox").press("Enter");
  const result = a.getByRole("list", { name: "Results" }).locator("a.result").first();
  await result.locator("mark", { hasText: "你好" }).waitFor();
  await shot(a, "search.png");
  await result.click();
  await a.locator("article.msg.highlight", { hasText: "a second line" }).waitFor();

  log("the zh-CN interface shows Chinese labels");
  const zh = await newPage(browser, "zh", { locale: "zh-CN" });
  await zh.goto(base + "/");
  await zh.getByRole("heading", { name: "登录" }).waitFor();
  await shot(zh, "signin-zh-CN.png");
  await signIn(zh, "wangfang", "owner-password-1");
  await zh.getByRole("navigation").getByRole("heading", { name: /^频道/ }).waitFor();
  await zh.getByRole("navigation").getByRole("heading", { name: /^私信/ }).waitFor();
  await zh.getByRole("link", { name: /项目-general/ }).click();
  await zh.getByRole("textbox", { name: /发消息给 项目-general/ }).waitFor();
  await shot(zh, "conversation-zh-CN.png");

  log("phone-size screen");
  const phone = await newPage(browser, "phone", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await signIn(phone, "lilei", "lilei-password-1");
  await phone.getByRole("link", { name: /项目-general/ }).waitFor();
  await shot(phone, "phone-sidebar.png");
  await phone.getByRole("link", { name: /项目-general/ }).click();
  await phone.getByRole("textbox", { name: /Message 项目-general/ }).waitFor();
  await see(phone, "sent while the server was down");
  await shot(phone, "phone-conversation.png");
  await phone.getByRole("button", { name: "Back" }).click();
  await phone.getByRole("link", { name: /项目-general/ }).waitFor();

  log("installable: manifest and service worker");
  const manifest = await fetch(base + "/manifest.webmanifest").then((r) => r.json());
  if (!manifest.icons?.some((i) => i.sizes === "512x512")) throw new Error("manifest lacks a 512px icon");
  const registered = await a.evaluate(() => navigator.serviceWorker.getRegistration().then((r) => !!r));
  if (!registered) throw new Error("the service worker is not registered");

  if (consoleErrors.length) throw new Error("console errors:\n" + consoleErrors.join("\n"));
  console.log("web client end-to-end: all passed");
} catch (e) {
  console.error(`web client end-to-end FAILED at step "${step}": ${e.stack ?? e}`);
  if (consoleErrors.length) console.error("console errors:\n" + consoleErrors.join("\n"));
  for (const ctx of browser?.contexts() ?? [])
    for (const [i, p] of ctx.pages().entries()) await p.screenshot({ path: join(SHOTS, `failure-${browser.contexts().indexOf(ctx)}-${i}.png`) }).catch(() => undefined);
  console.error("server output:\n" + serverOut.slice(-4000));
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => undefined);
  await stopServer().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
}
