/**
 * The report screen: category (grouped by the four platforms, searched by pinyin initials or
 * text), description, photos from the camera or gallery, and the place — the phone's GPS taken
 * when the report is started and again when a photo is taken, with its accuracy.
 */

import { call } from './api.js';
import { t, isEnglish } from './i18n.js';
import { Where } from './where.js';

const PLATFORMS = [
  ['governance', '综治工作', 'Governance'],
  ['market', '市场监管', 'Market supervision'],
  ['enforcement', '综合执法', 'Law enforcement'],
  ['service', '便民服务', 'Convenience services'],
];

const $ = (id) => document.getElementById(id);

export class ReportForm {
  constructor(config) {
    this.categories = [];
    this.category = null;
    this.photos = [];
    this.where = new Where($('report-map'), config.basemap, () => this.showWhere());
    $('category-search').addEventListener('input', () => this.drawCategories());
    $('photos').addEventListener('change', (event) => this.addPhotos(event.target));
    $('locate-again').addEventListener('click', () => this.locate());
  }

  async loadCategories() {
    try {
      this.categories = await call('/categories');
    } catch {
      this.categories = []; // offline on a first start: the worker's copy is used next time
    }
    this.drawCategories();
  }

  drawCategories() {
    const list = $('category-list');
    const query = $('category-search').value.trim().toLowerCase();
    const matches = (c) => !query || c.initials.startsWith(query) || c.initials.includes(query)
      || c.name_zh.includes(query) || c.name_en.toLowerCase().includes(query);
    list.replaceChildren();
    for (const [key, zh, en] of PLATFORMS) {
      const shown = this.categories.filter((c) => c.platform === key && matches(c));
      if (!shown.length) continue;
      const head = document.createElement('h4');
      head.textContent = isEnglish() ? `${zh} ${en}` : zh;
      list.append(head);
      for (const c of shown) {
        const button = document.createElement('button');
        button.type = 'button';
        button.setAttribute('role', 'option');
        button.dataset.code = c.code;
        button.setAttribute('aria-selected', String(this.category?.code === c.code));
        button.textContent = isEnglish() ? `${c.name_zh} ${c.name_en}` : c.name_zh;
        button.addEventListener('click', () => this.choose(c));
        list.append(button);
      }
    }
  }

  choose(category) {
    this.category = category;
    $('category-chosen').textContent = `✓ ${isEnglish() ? `${category.name_zh} ${category.name_en}` : category.name_zh}`;
    this.drawCategories();
  }

  /** Ask the phone for a fix now (capture time), with its accuracy. */
  locate() {
    if (!navigator.geolocation) return;
    $('where').textContent = t('locating');
    navigator.geolocation.getCurrentPosition(
      (position) => this.where.setFix(position),
      () => { if (!this.where.location) $('where').textContent = t('noFix'); },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 },
    );
  }

  addPhotos(input) {
    for (const file of input.files) {
      this.photos.push(file);
      const img = document.createElement('img');
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      $('photo-previews').append(img);
    }
    input.value = '';
    // The place of the photo is where the member stands now, not what its EXIF may say.
    if (this.where.location?.method !== 'manual') this.locate();
  }

  showWhere() {
    const span = $('where');
    span.textContent = this.where.describe();
  }

  /** The report's body, or a sentence saying what is missing. */
  body(user) {
    if (!this.category) return { missing: t('chooseCategory') };
    if (!this.where.location && !this.photos.length) return { missing: t('needLocation') };
    return {
      body: {
        category: this.category.code,
        description: $('description').value.trim(),
        // No fix: left to the photos' EXIF GPS when the outbox sends it (flagged photo_exif).
        location: this.where.location ? { ...this.where.location } : null,
        reporter: { kind: 'grid_member', id: user ? user.name : null },
        occurred_at: new Date().toISOString(),
      },
      photos: [...this.photos],
    };
  }

  /** Put a report back in the form (a refused one, to fix and send again). */
  load(item) {
    this.reset();
    $('description').value = item.body.description || '';
    for (const photo of item.photos) {
      this.photos.push(photo.blob);
      const img = document.createElement('img');
      img.src = URL.createObjectURL(photo.blob);
      $('photo-previews').append(img);
    }
    if (item.body.location) this.where.place(item.body.location);
    const same = this.categories.find((c) => c.code === item.body.category);
    if (same) this.choose(same);
  }

  reset() {
    this.category = null;
    this.photos = [];
    $('description').value = '';
    $('category-search').value = '';
    $('category-chosen').textContent = '';
    $('photo-previews').replaceChildren();
    $('report-error').textContent = '';
    this.drawCategories();
  }

  invalidateSize() {
    this.where.map.invalidateSize();
  }
}
