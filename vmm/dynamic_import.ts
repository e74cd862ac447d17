/**
 * Import a module whose absolute URL is known only at run time (a user's
 * setup or device module).
 *
 * No publish-time rewriting could apply to such an import anyway; going
 * through a function keeps `deno publish` from flagging an import it
 * cannot analyze. The URL must be absolute (a relative one would resolve
 * against nothing useful).
 *
 * @module
 */
const importer = new Function("url", "return import(url)") as (
  url: string,
) => Promise<Record<string, unknown>>;

/** Import the module at absolute `url`. */
export function importUrl(url: string): Promise<Record<string, unknown>> {
  return importer(url);
}
