/**
 * forward.ts as a process against the emulator: an account-region that lacks what a metrics entry asks for is
 * named on the run that lists it, and not on the runs that keep that listing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BIG_LACKS_APP, ok, withFleet } from "./fleet.ts";
import { said } from "./helpers.ts";

test("forward.ts names the account-region a metrics entry found nothing in once per listing: not on the runs that keep it", async () => {
  await withFleet({ minutes: 20, services: 20 }, async (fleet) => {
    const listing = await fleet.run(15);
    ok(listing);
    assert.equal(said(listing), BIG_LACKS_APP);
    // A minute later the listing is kept (discovery_interval, 600 s): nothing listed, nothing said.
    const kept = await fleet.run(14);
    ok(kept);
    assert.equal(said(kept), "");
    // Eleven minutes after the first, the next listing says it again.
    const next = await fleet.run(4);
    ok(next);
    assert.equal(said(next), BIG_LACKS_APP);
  });
});
