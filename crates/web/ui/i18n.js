// Every string of the web app in English and Simplified Chinese (zh-CN), the current
// language (`?lang=`, else the last choice, else the browser's language) and formatting of
// names and dates. Both dictionaries have the same keys; the browser test checks that.

export const DICTS = {
  en: {
    'nav.worklist': 'Worklist',
    'login.username': 'User name',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.failed': 'Wrong user name or password.',
    'login.throttled': 'Too many failed attempts. Try again in 15 minutes.',
    'login.offline': 'The server cannot be reached.',
    'login.mustChange': 'Choose a new password before you continue.',
    'login.newPassword': 'New password (at least 10 characters)',
    'login.repeat': 'Repeat it',
    'login.change': 'Change password',
    'login.mismatch': 'The two passwords differ.',
    'login.changeFailed': 'The password could not be changed.',
    'login.notice': 'Patient data: every access is recorded.',
    'user.logout': 'Sign out',
    'nav.admin': 'Administration',
    'admin.audit': 'Audit trail',
    'admin.users': 'Users',
    'admin.study': 'Study UID',
    'admin.user': 'User',
    'admin.from': 'From',
    'admin.to': 'To',
    'admin.search': 'Search',
    'admin.col.time': 'Time',
    'admin.col.user': 'User',
    'admin.col.org': 'Organisation',
    'admin.col.action': 'Action',
    'admin.col.outcome': 'Outcome',
    'admin.col.source': 'Source',
    'admin.col.study': 'Study',
    'admin.col.patient': 'Patient',
    'admin.col.detail': 'Detail',
    'admin.col.role': 'Role',
    'admin.col.name': 'Name',
    'admin.col.state': 'State',
    'admin.disabled': 'disabled',
    'admin.active': 'active',
    'admin.newUser': 'New user',
    'admin.create': 'Create',
    'admin.created': 'User created; they choose their own password at first sign-in.',
    'admin.none': 'No entries.',
    'nav.shortcuts': 'Shortcuts (?)',
    'nav.language': 'Language',

    'worklist.title': 'Worklist',
    'worklist.search': 'Search patient, ID, accession, description',
    'worklist.searchHint': 'Matches patient name, patient ID, accession number or study description',
    'worklist.modality': 'Modality',
    'worklist.ai': 'AI',
    'worklist.report': 'Report',
    'worklist.any': 'Any',
    'worklist.from': 'From',
    'worklist.to': 'To',
    'worklist.clear': 'Clear filters',
    'worklist.col.patient': 'Patient',
    'worklist.col.patientId': 'Patient ID',
    'worklist.col.date': 'Study date',
    'worklist.col.modality': 'Modality',
    'worklist.col.description': 'Description',
    'worklist.col.images': 'Images',
    'worklist.col.ai': 'AI status',
    'worklist.col.lungRads': 'Lung-RADS',
    'worklist.col.report': 'Report',
    'worklist.lungRadsHint': 'Highest Lung-RADS v2022 category of the study',
    'worklist.empty': 'No studies match.',
    'worklist.count': '{from}–{to} of {total}',
    'worklist.prev': 'Previous',
    'worklist.next': 'Next',
    'worklist.keys': 'Newest first. Keys: / search, ↑ ↓ move, Enter open, ? all shortcuts.',

    'ai.none': 'No AI',
    'ai.queued': 'Queued',
    'ai.running': 'Running',
    'ai.done': 'Done',
    'ai.failed': 'Failed',
    'ai.skipped': 'Skipped',

    'study.back': '← Worklist',
    'study.loading': 'Loading…',
    'study.noImages': 'The study has no image series',
    'tab.findings': 'Findings',
    'tab.report': 'Report',

    'viewer.preset.lung': 'Lung',
    'viewer.preset.mediastinum': 'Mediastinum',
    'viewer.preset.bone': 'Bone',
    'viewer.tool.wl': 'Window',
    'viewer.tool.pan': 'Pan',
    'viewer.tool.zoom': 'Zoom',
    'viewer.tool.line': 'Measure',
    'viewer.markers': 'AI markers',
    'viewer.seg': 'SEG outline',
    'viewer.reset': 'Reset view',
    'viewer.slice': 'Slice',
    'viewer.window': 'W/L',
    'viewer.zoom': 'Zoom',
    'viewer.loading': 'Loading slices',
    'viewer.loadingSlice': 'Loading slice…',
    'viewer.coronal': 'Coronal',
    'viewer.sagittal': 'Sagittal',

    'review.title': 'Findings',
    'review.studyLungRads': 'Study Lung-RADS',
    'review.add': 'Add finding',
    'review.addTitle': 'New finding (missed by the AI)',
    'review.none': 'The AI found no nodules.',
    'review.ai.queued': 'The AI has not read this study yet (queued).',
    'review.ai.running': 'The AI is reading this study…',
    'review.ai.failed': 'The AI could not read this study.',
    'review.ai.none': 'The AI does not read this study.',
    'review.ai.skipped': 'The AI skipped this study.',
    'review.origin.ai': 'AI',
    'review.origin.doctor': 'Doctor',
    'review.status.pending': 'To review',
    'review.status.accepted': 'Accepted',
    'review.status.rejected': 'Rejected',
    'review.status.corrected': 'Corrected',
    'review.status.added': 'Added',
    'review.accept': 'Accept',
    'review.reject': 'Reject',
    'review.correct': 'Correct',
    'review.save': 'Save',
    'review.cancel': 'Cancel',
    'review.type': 'Type',
    'review.location': 'Location',
    'review.solid': 'Solid component',
    'review.solidInvalid': 'The solid component must be a positive size in mm.',
    'review.long': 'Long',
    'review.short': 'Short',
    'review.draw.long': 'Draw long axis',
    'review.draw.short': 'Draw short axis',
    'review.drawHint': 'Click a button, then drag across the nodule on the axial image.',
    'review.needLines': 'Draw the long and the short axis first.',
    'review.mean': 'mean',
    'review.aiOriginal': 'AI original',
    'review.score': 'AI score',
    'review.signedConflict': 'The report is signed; add an addendum instead.',
    'review.keys': 'Keys: N/B next/previous, A accept, R reject, C correct, + add, Enter jump.',

    'type.solid': 'Solid',
    'type.part-solid': 'Part-solid',
    'type.ground-glass': 'Ground-glass',
    'type.calcified': 'Calcified',
    'lobe.RUL': 'Right upper lobe',
    'lobe.RML': 'Right middle lobe',
    'lobe.RLL': 'Right lower lobe',
    'lobe.LUL': 'Left upper lobe',
    'lobe.LLL': 'Left lower lobe',

    'report.aiDraft': 'AI DRAFT — written by the AI from the accepted findings; not signed',
    'report.draft': 'Draft — not signed',
    'report.signedBy': 'Signed by {who} on {when}',
    'report.ledger.pending': 'Ledger entry {n}: waiting for the next checkpoint',
    'report.ledger.verified': 'Ledger entry {n}: included in the signed checkpoint (log size {size}); proof checked in this browser',
    'report.ledger.unchecked': 'Ledger entry {n}: in the signed checkpoint (log size {size}); not checked here: this page is not a secure context',
    'report.ledger.failed': 'Ledger entry {n}: its inclusion proof does NOT verify',
    'report.status.unread': 'Unread',
    'report.status.draft': 'Draft',
    'report.status.signed': 'Signed',
    'report.section.findings': 'Findings',
    'report.section.impression': 'Impression',
    'report.section.recommendation': 'Recommendation',
    'report.save': 'Save draft',
    'report.regenerate': 'Rewrite from findings',
    'report.sign': 'Sign report',
    'report.confirmSign': 'Signing makes the report final. Sign?',
    'report.confirm': 'Sign now',
    'report.saved': 'Draft saved.',
    'report.signedToast': 'Report signed.',
    'report.unsaved': 'Unsaved changes',
    'report.conflict': 'The report is signed and cannot change; add an addendum.',
    'report.pdf': 'Download PDF',
    'report.addenda': 'Addenda',
    'report.addendumPlaceholder': 'Addendum text',
    'report.signAddendum': 'Sign addendum',
    'report.addendumSigned': 'Addendum signed.',

    'help.title': 'Keyboard shortcuts',
    'help.close': 'Close',
    'help.k.worklist': 'Worklist',
    'help.k.viewer': 'Viewer',
    'help.k.review': 'Review and report',
    'help.k.general': 'General',
    'help.search': 'Search',
    'help.moveRow': 'Move through studies',
    'help.openStudy': 'Open study',
    'help.scroll': 'Previous / next slice',
    'help.page': 'Ten slices back / forward',
    'help.ends': 'First / last slice',
    'help.presets': 'Lung / mediastinum / bone window',
    'help.tools': 'Window, pan, zoom, measure tool (left drag); middle drag pans, right drag zooms',
    'help.seg': 'Show / hide the SEG outline',
    'help.markers': 'Show / hide AI markers',
    'help.reset': 'Reset zoom and pan',
    'help.zoomWheel': 'Zoom',
    'help.escape': 'Cancel drawing, clear measurements',
    'help.next': 'Next / previous finding',
    'help.accept': 'Accept finding',
    'help.reject': 'Reject finding',
    'help.correct': 'Correct finding',
    'help.add': 'Add a missed finding',
    'help.jump': 'Jump to the finding',
    'help.tabs': 'Findings / report tab',
    'help.saveReport': 'Save the report draft',
    'help.back': 'Back to the worklist',
    'help.toggle': 'Show / hide this help',
    'help.lang': 'Switch language',

    'error.load': 'Could not load',
    'error.save': 'Could not save',
  },
  'zh-CN': {
    'nav.worklist': '工作列表',
    'login.username': '用户名',
    'login.password': '密码',
    'login.submit': '登录',
    'login.failed': '用户名或密码错误。',
    'login.throttled': '失败次数过多，请 15 分钟后再试。',
    'login.offline': '无法连接服务器。',
    'login.mustChange': '继续之前请设置新密码。',
    'login.newPassword': '新密码（至少 10 个字符）',
    'login.repeat': '再次输入',
    'login.change': '修改密码',
    'login.mismatch': '两次输入的密码不一致。',
    'login.changeFailed': '密码未能修改。',
    'login.notice': '患者数据：每次访问均被记录。',
    'user.logout': '退出登录',
    'nav.admin': '系统管理',
    'admin.audit': '审计日志',
    'admin.users': '用户',
    'admin.study': '检查 UID',
    'admin.user': '用户',
    'admin.from': '从',
    'admin.to': '至',
    'admin.search': '查询',
    'admin.col.time': '时间',
    'admin.col.user': '用户',
    'admin.col.org': '机构',
    'admin.col.action': '操作',
    'admin.col.outcome': '结果',
    'admin.col.source': '来源',
    'admin.col.study': '检查',
    'admin.col.patient': '患者',
    'admin.col.detail': '详情',
    'admin.col.role': '角色',
    'admin.col.name': '姓名',
    'admin.col.state': '状态',
    'admin.disabled': '已停用',
    'admin.active': '正常',
    'admin.newUser': '新建用户',
    'admin.create': '创建',
    'admin.created': '用户已创建；首次登录时由其自行设置密码。',
    'admin.none': '没有记录。',
    'nav.shortcuts': '快捷键 (?)',
    'nav.language': '语言',

    'worklist.title': '工作列表',
    'worklist.search': '搜索患者、ID、检查号、描述',
    'worklist.searchHint': '匹配患者姓名、患者 ID、检查号或检查描述',
    'worklist.modality': '模态',
    'worklist.ai': 'AI',
    'worklist.report': '报告',
    'worklist.any': '全部',
    'worklist.from': '从',
    'worklist.to': '至',
    'worklist.clear': '清除筛选',
    'worklist.col.patient': '患者',
    'worklist.col.patientId': '患者 ID',
    'worklist.col.date': '检查日期',
    'worklist.col.modality': '模态',
    'worklist.col.description': '描述',
    'worklist.col.images': '图像数',
    'worklist.col.ai': 'AI 状态',
    'worklist.col.lungRads': 'Lung-RADS',
    'worklist.col.report': '报告',
    'worklist.lungRadsHint': '本检查最高的 Lung-RADS v2022 分类',
    'worklist.empty': '没有符合条件的检查。',
    'worklist.count': '第 {from}–{to} 条，共 {total} 条',
    'worklist.prev': '上一页',
    'worklist.next': '下一页',
    'worklist.keys': '最新的在前。按键：/ 搜索，↑ ↓ 移动，Enter 打开，? 全部快捷键。',

    'ai.none': '无 AI',
    'ai.queued': '排队中',
    'ai.running': '分析中',
    'ai.done': '已完成',
    'ai.failed': '失败',
    'ai.skipped': '已跳过',

    'study.back': '← 工作列表',
    'study.loading': '加载中…',
    'study.noImages': '该检查没有图像序列',
    'tab.findings': '发现',
    'tab.report': '报告',

    'viewer.preset.lung': '肺窗',
    'viewer.preset.mediastinum': '纵隔窗',
    'viewer.preset.bone': '骨窗',
    'viewer.tool.wl': '窗宽窗位',
    'viewer.tool.pan': '平移',
    'viewer.tool.zoom': '缩放',
    'viewer.tool.line': '测量',
    'viewer.markers': 'AI 标记',
    'viewer.seg': 'SEG 轮廓',
    'viewer.reset': '重置视图',
    'viewer.slice': '层面',
    'viewer.window': '窗位/窗宽',
    'viewer.zoom': '缩放',
    'viewer.loading': '正在加载层面',
    'viewer.loadingSlice': '正在加载层面…',
    'viewer.coronal': '冠状位',
    'viewer.sagittal': '矢状位',

    'review.title': '发现',
    'review.studyLungRads': '检查 Lung-RADS',
    'review.add': '添加发现',
    'review.addTitle': '新发现（AI 遗漏）',
    'review.none': 'AI 未发现结节。',
    'review.ai.queued': 'AI 尚未阅读此检查（排队中）。',
    'review.ai.running': 'AI 正在阅读此检查…',
    'review.ai.failed': 'AI 无法阅读此检查。',
    'review.ai.none': 'AI 不阅读此检查。',
    'review.ai.skipped': 'AI 已跳过此检查。',
    'review.origin.ai': 'AI',
    'review.origin.doctor': '医生',
    'review.status.pending': '待审核',
    'review.status.accepted': '已接受',
    'review.status.rejected': '已拒绝',
    'review.status.corrected': '已修正',
    'review.status.added': '已添加',
    'review.accept': '接受',
    'review.reject': '拒绝',
    'review.correct': '修正',
    'review.save': '保存',
    'review.cancel': '取消',
    'review.type': '类型',
    'review.location': '位置',
    'review.solid': '实性成分',
    'review.solidInvalid': '实性成分须为大于 0 的毫米数。',
    'review.long': '长径',
    'review.short': '短径',
    'review.draw.long': '画长径',
    'review.draw.short': '画短径',
    'review.drawHint': '点击按钮，然后在横断面图像上拖过结节。',
    'review.needLines': '请先画出长径和短径。',
    'review.mean': '平均',
    'review.aiOriginal': 'AI 原始结果',
    'review.score': 'AI 评分',
    'review.signedConflict': '报告已签署；请添加补充说明。',
    'review.keys': '按键：N/B 下一个/上一个，A 接受，R 拒绝，C 修正，+ 添加，Enter 跳转。',

    'type.solid': '实性',
    'type.part-solid': '部分实性',
    'type.ground-glass': '磨玻璃',
    'type.calcified': '钙化',
    'lobe.RUL': '右肺上叶',
    'lobe.RML': '右肺中叶',
    'lobe.RLL': '右肺下叶',
    'lobe.LUL': '左肺上叶',
    'lobe.LLL': '左肺下叶',

    'report.aiDraft': 'AI 草稿 — 由 AI 根据已接受的发现撰写；未签署',
    'report.draft': '草稿 — 未签署',
    'report.signedBy': '{who} 于 {when} 签署',
    'report.ledger.pending': '存证记录 {n}：等待下一个检查点',
    'report.ledger.verified': '存证记录 {n}：已包含在 {size} 条记录的签名检查点中（已在本浏览器验证包含证明）',
    'report.ledger.unchecked': '存证记录 {n}：已在 {size} 条记录的检查点中（未验证：本页面不是安全上下文）',
    'report.ledger.failed': '存证记录 {n}：包含证明验证失败',
    'report.status.unread': '未读',
    'report.status.draft': '草稿',
    'report.status.signed': '已签署',
    'report.section.findings': '所见',
    'report.section.impression': '印象',
    'report.section.recommendation': '建议',
    'report.save': '保存草稿',
    'report.regenerate': '根据发现重写',
    'report.sign': '签署报告',
    'report.confirmSign': '签署后报告即为最终版本。确定签署？',
    'report.confirm': '立即签署',
    'report.saved': '草稿已保存。',
    'report.signedToast': '报告已签署。',
    'report.unsaved': '有未保存的修改',
    'report.conflict': '报告已签署，不能修改；请添加补充说明。',
    'report.pdf': '下载 PDF',
    'report.addenda': '补充说明',
    'report.addendumPlaceholder': '补充说明内容',
    'report.signAddendum': '签署补充说明',
    'report.addendumSigned': '补充说明已签署。',

    'help.title': '键盘快捷键',
    'help.close': '关闭',
    'help.k.worklist': '工作列表',
    'help.k.viewer': '阅片',
    'help.k.review': '审核与报告',
    'help.k.general': '通用',
    'help.search': '搜索',
    'help.moveRow': '在检查间移动',
    'help.openStudy': '打开检查',
    'help.scroll': '上一层 / 下一层',
    'help.page': '后退 / 前进十层',
    'help.ends': '第一层 / 最后一层',
    'help.presets': '肺窗 / 纵隔窗 / 骨窗',
    'help.tools': '窗宽窗位、平移、缩放、测量工具（左键拖动）；中键拖动平移，右键拖动缩放',
    'help.seg': '显示 / 隐藏 SEG 轮廓',
    'help.markers': '显示 / 隐藏 AI 标记',
    'help.reset': '重置缩放和平移',
    'help.zoomWheel': '缩放',
    'help.escape': '取消绘制，清除测量',
    'help.next': '下一个 / 上一个发现',
    'help.accept': '接受发现',
    'help.reject': '拒绝发现',
    'help.correct': '修正发现',
    'help.add': '添加遗漏的发现',
    'help.jump': '跳转到发现',
    'help.tabs': '发现 / 报告标签页',
    'help.saveReport': '保存报告草稿',
    'help.back': '返回工作列表',
    'help.toggle': '显示 / 隐藏本帮助',
    'help.lang': '切换语言',

    'error.load': '无法加载',
    'error.save': '无法保存',
  },
};

const SUPPORTED = Object.keys(DICTS);

function pick(l) {
  if (!l) return null;
  if (SUPPORTED.includes(l)) return l;
  const low = String(l).toLowerCase();
  if (low.startsWith('zh')) return 'zh-CN';
  if (low.startsWith('en')) return 'en';
  return null;
}

function initial() {
  const q = pick(new URLSearchParams(location.search).get('lang'));
  if (q) return q;
  let stored = null;
  try { stored = localStorage.getItem('lumen.lang'); } catch (_) { /* private mode */ }
  if (pick(stored)) return pick(stored);
  for (const l of navigator.languages || [navigator.language]) {
    const p = pick(l);
    if (p) return p;
  }
  return 'en';
}

let current = initial();
document.documentElement.lang = current;

/** The current language: `en` or `zh-CN`. */
export const lang = () => current;

/** Switches the language (remembered in this browser). */
export function setLang(l) {
  current = pick(l) || 'en';
  document.documentElement.lang = current;
  try { localStorage.setItem('lumen.lang', current); } catch (_) { /* private mode */ }
}

/** The text of `key` in the current language with `{name}` parameters filled in. */
export function t(key, params = {}, fallback) {
  const s = DICTS[current][key] ?? DICTS.en[key] ?? fallback ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? ''));
}

/** Re-labels every `data-i18n`, `data-i18n-placeholder` and `data-i18n-title` element under `root`. */
export function relabel(root) {
  root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  root.querySelectorAll('[data-i18n-title]').forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  document.title = `Lumen — ${t('nav.worklist')}`;
}

/** A DICOM date (YYYYMMDD) and optional time (HHMMSS) for display. */
export function fmtDate(d, tm) {
  if (!d || String(d).length < 8) return d || '';
  const s = String(d);
  let out = `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}`;
  if (tm && String(tm).length >= 4) out += ` ${String(tm).slice(0, 2)}:${String(tm).slice(2, 4)}`;
  return out;
}

/** An ISO-8601 timestamp in the reader's local time. */
export function fmtDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(current === 'zh-CN' ? 'zh-CN' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

/** A DICOM person name (`Family^Given^Middle`) or its JSON form for display. */
export function fmtName(pn) {
  if (!pn) return '';
  const s = typeof pn === 'object' ? (pn.Alphabetic || pn.Ideographic || '') : String(pn);
  const [family, given] = s.split('^');
  return [family, given].filter(Boolean).join(', ');
}
