// The graphdriver plugin's public surface: serve this driver to dockerd over its plugin protocol.
export { servePlugin, validatePluginName, DEFAULT_PLUGIN_NAME, type PluginOptions, type PluginHandle } from './server.js';
export { PLUGIN_SOCKET_DIR } from './protocol.js';
export { writePluginBundle, pluginConfig, type BundleOptions, type BundleResult, type PluginConfig } from './bundle.js';
export { homeDirName, MANAGED_PROPAGATED_MOUNT } from './managed.js';
