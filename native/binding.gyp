{
  'targets': [
    {
      'target_name': 'opdbus_native',
      'sources': ['src/addon.cc', 'src/audit_walk.cc'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      'defines': [
        # Node-API 8 is in every Node >= 12.22 and every Electron since 12: one binary for both.
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        '_GNU_SOURCE',
      ],
      'cflags+': ['-fvisibility=hidden', '-Wall', '-Wextra'],
      'cflags_cc+': ['-std=c++17'],
    },
  ],
}
