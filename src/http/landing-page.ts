import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import {
  ApolloServerPluginLandingPageLocalDefault,
  ApolloServerPluginLandingPageProductionDefault,
} from '@apollo/server/plugin/landingPage/default';

/** Apollo's offline notice, which the link to the offline explorer follows. */
const OFFLINE_NOTICE = /(cannot be loaded; it appears that you might be offline\.<\/p>)/;

/**
 * The page a browser gets at GET /graphql. Production: Apollo's production landing page.
 * Otherwise: Apollo Sandbox (loaded from Apollo's CDN by the browser), and where Sandbox
 * says it cannot load, a link to the GraphiQL this gateway serves itself (`explorerPath`),
 * which works without internet.
 */
export function landingPage(options: { production: boolean; explorerPath?: string }): ApolloServerPlugin<BaseContext> {
  if (options.production) return ApolloServerPluginLandingPageProductionDefault({ footer: false });
  const sandbox = ApolloServerPluginLandingPageLocalDefault({ embed: true, footer: false });
  const { explorerPath } = options;
  if (!explorerPath) return sandbox;
  const link = `<p>Offline? <a href="${explorerPath}">Open GraphiQL</a>: this gateway serves it itself, no internet needed.</p>`;
  const withLink = (html: string): string =>
    OFFLINE_NOTICE.test(html) ? html.replace(OFFLINE_NOTICE, `$1\n  ${link}`) : html.replace('</body>', `${link}\n</body>`);
  return {
    async serverWillStart(service) {
      const listener = await sandbox.serverWillStart?.(service);
      if (!listener?.renderLandingPage) return listener;
      const render = listener.renderLandingPage.bind(listener);
      return {
        ...listener,
        async renderLandingPage() {
          const page = await render();
          const { html } = page;
          return { html: typeof html === 'string' ? withLink(html) : async () => withLink(await html()) };
        },
      };
    },
  };
}
