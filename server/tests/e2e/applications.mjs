// An administrator manages applications in Debian's headless chromium (issue 13): a
// person who is not one is refused; the administrator registers a public device app
// and a confidential one (its secret shown once), rotates the secret and deletes the
// app after confirming. Run by the Rust test server/tests/server/browser.rs; by hand:
//
//   node server/tests/e2e/applications.mjs <base-url> --admin carol --admin-password P \
//        --user alice --password P [--screenshots DIR]
//
// Prints one JSON line with the public app's client_id; exits 1 on any failure.

import { check, openPhone } from './browser.mjs';

const [base, ...rest] = process.argv.slice(2);
const option = (name) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : null;
};
const [admin, adminPassword, user, password] =
  ['admin', 'admin-password', 'user', 'password'].map(option);
if (!base || !admin || !adminPassword || !user || !password) {
  console.error('usage: applications.mjs <base-url> --admin U --admin-password P --user U --password P [--screenshots DIR]');
  process.exit(2);
}
const PAGE = '/device/applications';

const { page, shot, looksRight, visited, close } = await openPhone({ shots: option('screenshots') });

async function signIn(username, pw) {
  await page.goto(`${base}/device/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(pw);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === '/device');
}

// The page's answer must carry the verification pages' protections.
function protectedAnswer(response, name) {
  const h = response.headers();
  check(h['x-frame-options'] === 'DENY', `${name}: X-Frame-Options DENY`);
  check((h['content-security-policy'] ?? '').includes("frame-ancestors 'none'"), `${name}: CSP frame-ancestors`);
  check(h['cache-control'] === 'no-store', `${name}: no-store`);
}

async function register(name, type, scope) {
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(type).check();
  await page.getByLabel('Scopes it may ask for').fill(scope);
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === PAGE && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Register' }).click(),
  ]);
  protectedAnswer(response, `register ${name}`);
  await page.waitForLoadState();
}

const shown = async (label) =>
  (await page.locator('dt', { hasText: label }).locator('xpath=following-sibling::dd[1]').innerText()).trim();

try {
  // Someone who is not an administrator: 403, nothing listed.
  await signIn(user, password);
  check(!(await page.locator('footer').innerText()).includes('Applications'), 'no link for a non-administrator');
  const refused = await page.goto(`${base}${PAGE}`);
  check(refused.status() === 403, `a non-administrator gets 403, got ${refused.status()}`);
  protectedAnswer(refused, 'refusal');
  await looksRight('applications-forbidden', 'Administrators only');
  await shot('applications-forbidden');
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/device/login');

  // The administrator: from the footer's link to the list.
  await signIn(admin, adminPassword);
  await page.getByRole('link', { name: 'Applications' }).click();
  await page.waitForURL((u) => u.pathname === PAGE);
  await looksRight('applications', 'Applications');
  check(await page.locator('code', { hasText: /^tv$/ }).count() === 1, 'configured clients are listed');
  await shot('applications');

  // A public device app: its client_id, no secret.
  await register('Garage TV', 'Public: a device app, no secret', 'openid tv');
  await looksRight('application-registered', 'Application registered');
  const publicId = await shown('client_id');
  check(/^dfc\d+-/.test(publicId), `a registered client_id, got ${publicId}`);
  check(await page.locator('dt', { hasText: 'Client secret' }).count() === 0, 'a public app has no secret');
  await shot('application-registered');

  // A confidential one: its secret, shown this once.
  await page.getByRole('link', { name: 'Back to applications' }).click();
  await register('Office printer', 'Confidential: secret in HTTP Basic', 'openid');
  await looksRight('application-secret', 'Application registered');
  const printerId = await shown('client_id');
  const secret = await shown('Client secret');
  check(secret.length >= 40, 'a long random secret');
  await shot('application-secret');
  await page.getByRole('link', { name: 'Back to applications' }).click();
  await page.waitForURL((u) => u.pathname === PAGE);
  check(!(await page.content()).includes(secret), 'the secret is not shown again');

  // Rotate: a new secret, shown once.
  const printer = page.locator('li', { hasText: printerId });
  await printer.getByRole('button', { name: 'Rotate secret' }).click();
  await page.waitForLoadState();
  await looksRight('application-rotated', 'New secret');
  const rotated = await shown('Client secret');
  check(rotated !== secret, 'rotation gives a new secret');

  // Delete, after confirming.
  await page.getByRole('link', { name: 'Back to applications' }).click();
  await page.locator('li', { hasText: printerId }).getByRole('button', { name: 'Delete' }).click();
  await page.waitForLoadState();
  await looksRight('application-delete', 'Delete Office printer?');
  await shot('application-delete');
  await page.getByRole('button', { name: 'Delete Office printer' }).click();
  await page.waitForLoadState();
  await looksRight('applications-after-delete', 'Applications');
  check((await page.getByRole('status').innerText()).includes('Office printer was deleted.'), 'the deletion is said');
  check(await page.locator('li', { hasText: printerId }).count() === 0, 'the deleted app is gone from the list');
  check(await page.locator('li', { hasText: publicId }).count() === 1, 'the other app stays');

  console.log(JSON.stringify({ ok: true, client_id: publicId, deleted: printerId, pages: visited }));
} catch (e) {
  await shot('failure').catch(() => {});
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e), url: page.url(), pages: visited }));
  process.exitCode = 1;
} finally {
  await close();
}
