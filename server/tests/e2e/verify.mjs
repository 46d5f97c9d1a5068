// A person approves (or denies) a device in Debian's headless chromium, driven by
// playwright-core: sign in, type the code in lower case with spaces, decide, and see
// the page that sends them back to the device. Run by the Rust test
// server/tests/server/browser.rs; by hand:
//
//   node server/tests/e2e/verify.mjs <base-url> <user-code> approve|deny \
//        [--user alice --password alice-password] [--screenshots DIR] [--only a,b] [--tour]
//        [--host-rules 'MAP devices.test 127.0.0.1']
//
// --tour also visits the pages around the flow (an error, verification_uri_complete,
// the device display) and signs out, forgetting the browser. --only names the screenshots to take (default:
// all), so two runs side by side do not write the same file. Prints one JSON line;
// exits 1 on any failure.

import { check, openPhone } from './browser.mjs';

const [base, userCode, decision, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : fallback;
};
const user = option('user', 'alice');
const password = option('password', `${user}-password`);
const shots = option('screenshots', null);
const tour = rest.includes('--tour');
const only = option('only', null)?.split(',');
const hostRules = option('host-rules', null);
if (!base || !/^[A-Z]{4}-[A-Z]{4}$/.test(userCode ?? '') || !['approve', 'deny'].includes(decision)) {
  console.error('usage: verify.mjs <base-url> <XXXX-XXXX> approve|deny [--user U --password P] [--screenshots DIR] [--tour]');
  process.exit(2);
}

const { page, shot, looksRight, visited, close } = await openPhone({ shots, only, hostRules });

try {
  // 1. verification_uri: not signed in yet, so the sign-in page comes first.
  await page.goto(`${base}/device`);
  check(new URL(page.url()).pathname === '/device/login', `sign-in first, got ${page.url()}`);
  await looksRight('sign-in', 'Sign in');
  check(await page.evaluate(() => document.activeElement?.id === 'username'), 'focus starts on Username');
  await shot('sign-in');
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === '/device');

  // 2. The code, typed as a person might: lower case, a space for the dash.
  await looksRight('code-entry', 'Connect a device');
  check(await page.evaluate(() => document.activeElement?.id === 'user_code'), 'focus starts on Code');
  await shot('code-entry');
  const typed = userCode.toLowerCase().replace('-', ' ');
  await page.getByLabel('Code').pressSequentially(typed, { delay: 20 });
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.pathname === '/device/consent');

  // 3. Consent: names the code; Approve and Deny of the same size and style.
  await looksRight('consent', /^Allow .+ to access your account\?$/);
  const body = await page.locator('main').innerText();
  check(body.includes(userCode), 'the consent page shows the code');
  const approve = page.getByRole('button', { name: 'Approve' });
  const deny = page.getByRole('button', { name: 'Deny' });
  const [a, d] = [await approve.boundingBox(), await deny.boundingBox()];
  check(Math.abs(a.width - d.width) < 1 && Math.abs(a.height - d.height) < 1, 'equal-size buttons');
  const style = (l) => l.evaluate((e) => {
    const s = getComputedStyle(e);
    return [s.backgroundColor, s.color, s.borderColor, s.fontWeight, s.fontSize].join();
  });
  check((await style(approve)) === (await style(deny)), 'equal-style buttons');
  await shot('consent');
  await (decision === 'approve' ? approve : deny).click();

  // 4. Done: back to the device.
  await page.waitForLoadState();
  await looksRight(decision === 'approve' ? 'done' : 'done-denied',
    decision === 'approve' ? 'Device connected' : 'Request denied');
  check((await page.locator('main').innerText()).includes('Go back to your device'), 'tells to go back to the device');
  await shot(decision === 'approve' ? 'done' : 'done-denied');

  if (tour) {
    // The same code again, now used: the one error for codes that cannot be decided.
    await page.goto(`${base}/device`);
    await page.getByLabel('Code').fill(userCode);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForLoadState();
    await looksRight('error', 'Connect a device');
    const alert = page.getByRole('alert');
    check((await alert.innerText()).startsWith('That code is not valid.'), 'the error is announced');
    check((await page.getByLabel('Code').getAttribute('aria-invalid')) === 'true', 'the field is marked invalid');
    await shot('error');

    // verification_uri_complete: the code shown to be confirmed, nothing decided.
    await page.goto(`${base}/device?user_code=${userCode}`);
    await looksRight('confirm', 'Confirm the code');
    check((await page.locator('.code-big').innerText()).trim() === userCode, 'the code is shown');
    await shot('confirm');

    // The device display page, with its QR code.
    await page.goto(`${base}/device/display?user_code=${userCode}`);
    await looksRight('display', 'Sign in on your phone');
    check((await page.locator('svg.qr').count()) === 1, 'a QR code');
    await shot('display');

    // Sign out, forgetting the browser (a phone that is not the person's): the
    // known-browser cookie the sign-in set is gone with the session.
    const known = async () => (await page.context().cookies()).some((c) => c.name.endsWith('deviceflow-known'));
    check(await known(), 'the sign-in made the browser known');
    await page.goto(`${base}/device`);
    await page.getByRole('button', { name: 'Sign out and forget this browser' }).click();
    await page.waitForURL((u) => u.pathname === '/device/login');
    await looksRight('signed-out', 'Sign in');
    check(!(await known()), 'signing out and forgetting the browser cleared its known-browser cookie');
  }
  console.log(JSON.stringify({ ok: true, decision, pages: visited }));
} catch (e) {
  await shot('failure').catch(() => {});
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e), url: page.url(), pages: visited }));
  process.exitCode = 1;
} finally {
  await close();
}
