// inbox.mjs - the approver inbox in headless Chromium, through a running
// `docket serve`: staff sign in, open their instance, upload evidence with
// a Chinese file name and submit; the department head signs in, finds the
// task with its due date, opens it, sees the diagram with the current state
// highlighted, is asked for a comment where the flow requires one, approves
// with a comment and sees the new state and the audit line.
//
// Run by tests/e2e/browser_inbox.sh, which starts the server and passes:
//   DOCKET_BASE, STAFF_TOKEN, HEAD_TOKEN, INSTANCE, UPLOAD_FILE, CHROMIUM,
//   USER_DATA_DIR, SCREENSHOT (optional: where to save the instance page)
// Prints TAP lines; the shell script counts them.
import { chromium } from "playwright-core";

const env = (k) => {
  if (!process.env[k]) throw new Error("inbox.mjs needs " + k + " in the environment");
  return process.env[k];
};
const base = env("DOCKET_BASE");
const instance = env("INSTANCE");
const uploadFile = env("UPLOAD_FILE");

let n = 0;
let failed = 0;
function check(cond, name, detail) {
  n++;
  if (cond) console.log(`ok ${n} - ${name}`);
  else {
    failed++;
    console.log(`not ok ${n} - ${name}`);
    if (detail !== undefined) for (const l of String(detail).split("\n").slice(0, 15)) console.log("#   " + l);
  }
}

// Waits for a condition the page reaches asynchronously; a timeout is a
// failed check, not a crash, so the remaining steps still report.
async function waitCheck(promise, name) {
  try {
    await promise;
    check(true, name);
    return true;
  } catch (e) {
    check(false, name, e.message);
    return false;
  }
}

let context;
try {
  context = await chromium.launchPersistentContext(env("USER_DATA_DIR"), {
    executablePath: env("CHROMIUM"),
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
    locale: "zh-CN",
    viewport: { width: 1100, height: 1000 },
  });
} catch (e) {
  console.log("not ok 1 - chromium starts");
  console.log("# could not launch " + process.env.CHROMIUM + ": " + e.message.split("\n")[0]);
  console.log("# install it with: sudo apt-get install chromium (or run `make deps` as root)");
  process.exit(1);
}
check(true, "chromium starts");
const page = context.pages()[0] || (await context.newPage());
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
page.setDefaultTimeout(15000);

async function signIn(token) {
  await page.goto(base + "/inbox");
  // With a token kept from before, the page shows nothing until the server
  // answered who that is (/api/me, then the tasks): wait until it shows
  // either the sign-out button or the sign-in form, or a slow answer reads
  // as "signed out" and the form never appears.
  await page.locator("#signout:visible, #token:visible").first().waitFor();
  if (await page.locator("#signout").isVisible()) await page.click("#signout");
  await page.fill("#token", token);
  await page.click("#signin-form button[type=submit]");
}

try {
  // ---- staff: upload the plan and submit --------------------------------
  await signIn(env("STAFF_TOKEN"));
  await waitCheck(page.locator("#who").filter({ hasText: "李明" }).waitFor(), "staff signs in and sees their Chinese name");
  await page.goto(base + "/inbox/instances/" + instance);
  await waitCheck(page.locator("#i-meta").filter({ hasText: "draft" }).waitFor(), "the instance page opens in state draft");
  await page.selectOption("#upload-kind", "plan");
  await page.setInputFiles("#upload-file", uploadFile);
  await page.click("#upload-form button[type=submit]");
  const name = uploadFile.split("/").pop();
  await waitCheck(page.locator("#evidence li").filter({ hasText: name }).waitFor(), "the uploaded file is listed under its Chinese name " + name);
  await page.locator("#actions button", { hasText: "submit" }).click();
  await page.click("#act-go");
  await waitCheck(page.locator("#i-meta").filter({ hasText: "review" }).waitFor(), "submit moves the instance to review");
  // The review is the head's: staff are offered none of its moves (the
  // page used to show every transition of the state to everyone).
  const staffButtons = await page.locator("#actions button").allTextContents();
  check(!staffButtons.includes("approve") && !staffButtons.includes("return"),
    "staff are not offered the head's approve or return", JSON.stringify(staffButtons));

  // ---- the department head: find the task, approve with a comment --------
  await signIn(env("HEAD_TOKEN"));
  await waitCheck(page.locator("#who").filter({ hasText: "魏国华" }).waitFor(), "the department head signs in");
  const row = page.locator("#tasks tr").filter({ hasText: "review" }).filter({ has: page.locator(`td:text-is("${instance}")`) });
  if (await waitCheck(row.waitFor(), "the task is in my tasks")) {
    const due = (await row.locator("td").nth(4).innerText()).trim();
    check(/\d/.test(due), "the task shows its due date", "due cell: '" + due + "'");
    await row.locator("a").click();
  } else {
    await page.goto(base + "/inbox/instances/" + instance);
  }
  await waitCheck(page.locator("#i-meta").filter({ hasText: "review" }).waitFor(), "the task opens the instance page");

  // The head is offered exactly what the API says they may fire.
  const offered = await page.locator("#actions button").allTextContents();
  const mayFire = await page.evaluate(async (id) => {
    const r = await fetch("/api/instances/" + id, { headers: { Authorization: "Bearer " + sessionStorage.getItem("docket-token") } });
    return (await r.json()).available_transitions;
  }, instance);
  check(Array.isArray(mayFire) && mayFire.includes("approve") &&
    JSON.stringify([...offered].sort()) === JSON.stringify([...mayFire].sort()),
    "the head is offered exactly the moves the API allows them", JSON.stringify({ offered, mayFire }));
  // No edge label of the diagram lies on another label or on a state.
  const overlaps = await page.evaluate(() => {
    const box = (e) => e.getBoundingClientRect();
    const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
    const labels = [...document.querySelectorAll("#diagram text.edge-label")];
    const states = [...document.querySelectorAll("#diagram g.state rect")];
    const bad = [];
    labels.forEach((l, i) => {
      labels.slice(i + 1).forEach((m) => { if (hit(box(l), box(m))) bad.push(l.textContent + "/" + m.textContent); });
      states.forEach((s) => { if (hit(box(l), box(s))) bad.push(l.textContent + " on a state"); });
    });
    return { n: labels.length, bad };
  });
  check(overlaps.n > 0 && overlaps.bad.length === 0, "no diagram edge label overlaps another or a state", JSON.stringify(overlaps));
  const cur = page.locator("#diagram svg g.state.current");
  const curText = await cur.allTextContents();
  check(curText.length === 1 && curText[0].includes("review") && curText[0].includes("部门负责人审核"),
    "the diagram highlights the current state with its Chinese title", JSON.stringify(curText));
  // The highlight must be visible, not only a class: its fill differs from
  // an ordinary state's.
  const fills = await page.evaluate(() => {
    const f = (sel) => { const r = document.querySelector(sel); return r ? getComputedStyle(r).fill : null; };
    return [f("#diagram g.state.current rect"), f("#diagram g.state:not(.current) rect")];
  });
  check(fills[0] && fills[1] && fills[0] !== fills[1], "the current state is drawn differently", JSON.stringify(fills));
  // Chinese text is laid out with real glyphs: the title is as wide as
  // its characters (a missing font falls back to boxes, and an encoding
  // error would show other characters).
  const title = await page.locator("#i-title").innerText();
  check(title.includes("月度工作计划"), "the instance title is rendered in Chinese", title);
  const widths = await page.evaluate(() => {
    const c = document.createElement("canvas").getContext("2d");
    c.font = "16px sans-serif";
    // U+E000 is a private-use code point no font draws: the width of the
    // fallback box. Real CJK glyphs differ in width from one another.
    return [c.measureText("一").width, c.measureText("審").width, c.measureText("\uE000").width,
      document.fonts.check("16px sans-serif", "审核")];
  });
  check(widths[0] > 0 && (widths[0] !== widths[2] || widths[1] !== widths[2]), "a font with Chinese glyphs is available", JSON.stringify(widths));

  // return needs a comment: the page says so and will not send an empty one.
  await page.locator("#actions button", { hasText: "return" }).click();
  const label = await page.locator("#comment-label").innerText();
  const required = await page.locator("#comment").evaluate((e) => e.required);
  check(required && /必填|required/.test(label), "return asks for a required comment", label);
  await page.click("#act-go");
  const stillReview = await page.locator("#i-meta").innerText();
  check(stillReview.includes("review") && (await page.locator("#act-form").isVisible()),
    "an empty required comment is not sent", stillReview);
  await page.click("#act-cancel");

  const comment = "同意，按计划执行 / approved as planned";
  await page.locator("#actions button", { hasText: "approve" }).click();
  await page.fill("#comment", comment);
  await page.click("#act-go");
  await waitCheck(page.locator("#i-meta").filter({ hasText: "in-progress" }).waitFor(), "approve moves the instance to in-progress");
  await waitCheck(page.locator("#log li").filter({ hasText: "approve" }).filter({ hasText: comment }).waitFor(),
    "the history shows the approval with its comment");
  const curAfter = await page.locator("#diagram svg g.state.current").allTextContents();
  check(curAfter.length === 1 && curAfter[0].includes("in-progress"), "the diagram highlights the new state", JSON.stringify(curAfter));
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  check(pageErrors.length === 0, "no script errors on the page", pageErrors.join("\n"));
} catch (e) {
  check(false, "the browser scenario runs to its end", e.stack || e.message);
} finally {
  await context.close();
}
console.log("1.." + n);
process.exit(failed ? 1 : 0);
