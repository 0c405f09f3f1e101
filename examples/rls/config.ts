/**
 * basefyio's "Security & Row-Level Security" page (Supabase-style, `reference/basefyio-security-rls.txt`) as
 * Citadel policies. The page's three database roles become: `anon` (the default role: no token, or a publishable
 * key, the page's anon key), `authenticated` (every signed-in user) and `service_role` (a secret API key, which
 * bypasses the guard as the page's service role bypasses RLS). `auth.uid()` is `@user.id`.
 *
 * Each `CREATE POLICY` of the page is one policy below, under the statement it translates. Two differences from
 * PostgreSQL's RLS worth knowing: a command no policy grants is 403 naming the permission (RLS answers an empty
 * result or "0 rows"), and several matching `filter` policies are ANDed (RLS ORs permissive policies), so two
 * page policies on one table and command would be written as one filter with `$or`. A policy's filter is both
 * USING (which rows a command reaches) and WITH CHECK (what a created or updated row must satisfy, §4.6), which is
 * what PostgreSQL does too when a policy gives USING without WITH CHECK.
 */
import { boolean, type CreateAppInput, em, entity, relation, text } from "citadel";

export const schema = em(
  {
    profiles: entity("profiles", { username: text().required().maxLength(80), bio: text().maxLength(2_000) }),
    posts: entity("posts", {
      title: text().required().maxLength(200),
      content: text().maxLength(100_000),
      published: boolean().default(false),
    }),
    users: entity("users", {}),
  },
  ({ profiles, posts, users }) => [
    // profiles.user_id and posts.author_id: the server fills them with the caller's id on create (§4.14)
    relation(profiles, "user").manyToOne(users, { owner: true }),
    relation(posts, "author").manyToOne(users, { owner: true }),
  ],
);

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

const onProfiles = { entity: "profiles" };
const onPosts = { entity: "posts" };

/** CREATE POLICY "Public posts readable" ON posts FOR SELECT TO anon, authenticated USING (published = true) */
const publicPostsReadable = { condition: onPosts, effect: "filter" as const, filter: { published: true } };

export const app: CreateAppInput = {
  connection: { url: process.env.CITADEL_DB ?? "file:rls.db" },
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "authenticated",
      api_keys: {
        enabled: true,
        publishable_role: "anon", // the anon key: RLS enforced, as an unauthenticated caller
        // secret_role left out: a secret key is the service key, "full access to all data"
      },
      roles: {
        anon: { is_default: true, permissions: [{ permission: READ, policies: [publicPostsReadable] }] },
        authenticated: {
          permissions: [
            {
              permission: READ,
              policies: [
                // CREATE POLICY "Users read own data" ON profiles FOR SELECT TO authenticated
                //   USING (user_id = auth.uid());
                { condition: onProfiles, effect: "filter", filter: { user_id: "@user.id" } },
                publicPostsReadable,
              ],
            },
            {
              permission: CREATE,
              policies: [
                // CREATE POLICY "Users insert own profile" ON profiles FOR INSERT TO authenticated
                //   WITH CHECK (user_id = auth.uid());
                { condition: onProfiles, effect: "filter", filter: { user_id: "@user.id" } },
                // Not on the page (its SQL shows only UPDATE for posts): authors write their own posts.
                { condition: onPosts, effect: "filter", filter: { author_id: "@user.id" } },
              ],
            },
            {
              permission: UPDATE,
              policies: [
                // CREATE POLICY "Users update own data" ON profiles FOR UPDATE TO authenticated
                //   USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
                { condition: onProfiles, effect: "filter", filter: { user_id: "@user.id" } },
                // CREATE POLICY "Authors edit own posts" ON posts FOR UPDATE TO authenticated
                //   USING (author_id = auth.uid());
                { condition: onPosts, effect: "filter", filter: { author_id: "@user.id" } },
              ],
            },
            // Not on the page either: authors delete their own posts. Profiles have no DELETE policy, so no one
            // but the service key deletes a profile.
            {
              permission: DELETE,
              policies: [{ condition: onPosts, effect: "filter", filter: { author_id: "@user.id" } }],
            },
          ],
        },
      },
    },
  },
};
export default app;
