/**
 * Labels in Chinese, with English beside them when the member turns that on in 设置 Settings
 * (kept in localStorage: a display preference, never a credential).
 */

const LABELS = {
  title: ['网格员', 'Grid member'],
  report: ['上报', 'Report'],
  category: ['事件类别', 'Category'],
  categorySearch: ['搜索:拼音首字母或文字', 'Search: pinyin initials or text'],
  description: ['描述', 'Description'],
  addPhotos: ['拍照 / 相册', 'Camera / gallery'],
  locateAgain: ['重新定位', 'Locate again'],
  send: ['发送', 'Send'],
  sent: ['已上报', 'Reported'],
  sameThing: ['这是同一件事吗?', 'Is this the same case?'],
  attach: ['是同一件,并入', 'Same case: attach to'],
  attached: ['已并入', 'Attached to'],
  newReport: ['再报一件', 'Report another'],
  myWork: ['我的工作', 'My work'],
  cases: ['事件', 'Cases'],
  errands: ['跑小二', 'Errands'],
  note: ['备注', 'Note'],
  trips: ['群众跑腿次数', "Applicant's trips"],
  back: ['返回', 'Back'],
  settings: ['设置', 'Settings'],
  logout: ['退出登录', 'Log out'],
  grid: ['网格', 'Grid'],
  member: ['网格员', 'Member'],
  unit: ['承办单位', 'Unit'],
  due: ['办结期限', 'Deadline'],
  status: ['状态', 'Status'],
  caseNo: ['事件编号', 'Case'],
  noUnit: ['待指挥室指派', 'waiting for the command room'],
  noGrid: ['不在任何网格内', 'outside every grid'],
  locating: ['正在定位…', 'Locating…'],
  noFix: ['无法定位:可在地图上点选位置', 'No GPS fix: tap the map to place it'],
  accuracy: ['精度', 'accuracy'],
  movedByHand: ['已手动调整', 'moved by hand'],
  fromPhoto: ['位置来自照片 EXIF,请核对', 'location from the photo EXIF, please check'],
  waiting: ['份待发送', 'waiting to send'],
  waitingOne: ['份待发送', 'waiting to send'],
  queued: ['无信号:已保存,有信号时自动发送', 'No signal: saved, sent when the signal returns'],
  failed: ['未能发送', 'Not sent'],
  discard: ['放弃', 'Discard'],
  edit: ['修改后重发', 'Edit and send again'],
  chooseCategory: ['请选择事件类别', 'Choose a category'],
  needLocation: ['还没有位置:请定位或在地图上点选', 'No location yet: locate or tap the map'],
  nothing: ['暂无', 'Nothing yet'],
  done: ['已完成', 'Done'],
  overdue: ['已超期', 'overdue'],
  accept: ['签收', 'Accept'],
  start: ['开始处置', 'Start'],
  resolve: ['办结', 'Resolve'],
  collect: ['收件', 'Collect'],
  submit: ['提交审批', 'Submit'],
  deliver: ['送达', 'Deliver'],
  offline: ['无网络,请稍后再试', 'Offline: try again later'],
  retired: ['该类别已停用,请重新选择类别后再发送', 'This category was retired: choose another and send again'],
  notYours: ['照片不是本人上传的', 'A photo was uploaded by someone else'],
  outside: ['位置不在服务区内', 'The location is outside the service area'],
  badPhoto: ['照片无法使用', 'A photo cannot be used'],
  tooLarge: ['照片太大', 'A photo is too large'],
  notAllowed: ['当前状态不能执行此操作', 'Not allowed in the current state'],
  loginAgain: ['登录已失效,请重新登录', 'Your login expired: log in again'],
  error: ['出错了', 'Something went wrong'],
};

const STATUS = {
  reported: ['待指派', 'reported'], assigned: ['待签收', 'assigned'], accepted: ['已签收', 'accepted'],
  in_progress: ['处置中', 'in progress'], resolved: ['已办结', 'resolved'], closed: ['已归档', 'closed'],
  returned: ['已退回', 'returned'], escalated: ['已上报上级', 'escalated'], cancelled: ['已撤销', 'cancelled'],
  duplicate: ['重复', 'duplicate'], requested: ['待收件', 'requested'], collecting: ['收件中', 'collecting'],
  submitted: ['审批中', 'submitted'], approved: ['已批准', 'approved'], rejected: ['未批准', 'rejected'],
  delivered: ['已送达', 'delivered'],
};

const KEY = 'gis-app-english';
let english = localStorage.getItem(KEY) === '1';

export function setEnglish(on) {
  english = on;
  localStorage.setItem(KEY, on ? '1' : '0');
}

export const isEnglish = () => english;

function pair([zh, en]) {
  return english ? `${zh} ${en}` : zh;
}

/** The label of `key` in the member's language. */
export function t(key) {
  const entry = LABELS[key];
  return entry ? pair(entry) : key;
}

/** A case's or an errand's status. */
export function statusLabel(status) {
  return STATUS[status] ? pair(STATUS[status]) : status;
}

/** Fill every [data-t] element's text and every [data-tp] element's placeholder. */
export function applyLabels(root) {
  root.querySelectorAll('[data-t]').forEach((el) => { el.textContent = t(el.dataset.t); });
  root.querySelectorAll('[data-tp]').forEach((el) => { el.placeholder = t(el.dataset.tp); });
}

/** An API error (`{code, detail}`) as a sentence in the member's language. */
export function errorText(error) {
  const byCode = {
    unknown_code: 'retired', outside_coverage: 'outside', payload_too_large: 'tooLarge',
    invalid_transition: 'notAllowed', unauthorized: 'loginAgain',
  };
  let key = byCode[error.code];
  if (!key && error.code === 'validation_error') {
    key = /another user/.test(error.detail) ? 'notYours' : /photo|image/.test(error.detail) ? 'badPhoto' : null;
  }
  if (error.offline) key = 'offline';
  const head = t(key || 'error');
  // The server's own words stay available (English), for the command room's support line.
  return english && error.detail ? `${head} (${error.detail})` : head;
}
