"""The dock: session, rasters, classes, the loop buttons, progress and the iteration table.

It shows state and emits typed requests (dataclasses); it computes nothing. The controller listens and updates it.
"""

from dataclasses import dataclass

from qgis.core import QgsMapLayerProxyModel
from qgis.gui import QgsColorButton, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QIcon
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .classes import Classes
from .metrics import percent
from .resources import icon_path
from .session import STRATEGIES, IterationRecord, LoopOptions, points_summary, shares_summary

EXTENTS = (("full", "whole raster"), ("visible", "visible extent"))
WEIGHT_TIP = (
    "Map weight: above 1 paints more of the class, below 1 less (2: twice its probability).\n"
    "Or a share of the map, such as 7%: Predict finds the weight that paints the class on about that much.\n"
    "Double-click to edit; Predict applies it without retraining."
)


@dataclass(frozen=True)
class ClassEdit:
    action: str  # "add", "rename", "recolor", "reweight", "remove" or "activate"
    index: int = -1
    value: str = ""  # the new name, colour or weight


@dataclass(frozen=True)
class RunRequest:
    commands: tuple[str, ...]  # some of "train", "predict", "suggest", in order
    loop: LoopOptions


class SparseAlDock(QDockWidget):
    sessionFolderChosen = pyqtSignal(str)
    rastersChanged = pyqtSignal(list)
    referenceChanged = pyqtSignal(str)
    classEdited = pyqtSignal(object)
    runRequested = pyqtSignal(object)
    cancelRequested = pyqtSignal()
    undoRequested = pyqtSignal()
    exportRequested = pyqtSignal()
    settingsRequested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__("Sparse AL", parent)
        self.setObjectName("SparseAlDock")
        self._updating = False
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._session_box())
        layout.addWidget(self._classes_box())
        layout.addWidget(self._loop_box())
        layout.addWidget(self._iterations_box(), 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.set_session(None)
        self.set_busy(False)

    # ----- building -----
    def _session_box(self) -> QGroupBox:
        box = QGroupBox("Session")
        form = QFormLayout(box)
        row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setReadOnly(True)
        self.folder_edit.setPlaceholderText("points, models, results")
        self.folder_button = QPushButton("Open…")
        self.folder_button.setToolTip("Open a session folder, or create one in an empty folder")
        self.folder_button.clicked.connect(self._choose_folder)
        self.settings_button = QToolButton()
        self.settings_button.setText("⚙")
        self.settings_button.setToolTip("Sparse AL settings: the engine's Python, training options")
        self.settings_button.clicked.connect(self.settingsRequested)
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.folder_button)
        row.addWidget(self.settings_button)
        form.addRow("Folder", row)
        self.raster_list = QListWidget()
        self.raster_list.setMaximumHeight(54)
        self.raster_list.setToolTip("The raster layers to train on, predict and suggest on (tick one or more)")
        self.raster_list.itemChanged.connect(self._rasters_ticked)
        form.addRow("Rasters", self.raster_list)
        self.reference_combo = QgsMapLayerComboBox()
        self.reference_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.reference_combo.setAllowEmptyLayer(True)
        self.reference_combo.setLayer(None)
        self.reference_combo.setToolTip("Optional: a label raster of class indices, to score each prediction")
        self.reference_combo.layerChanged.connect(self._reference_chosen)
        form.addRow("Reference", self.reference_combo)
        return box

    def _classes_box(self) -> QGroupBox:
        box = QGroupBox("Classes")
        box.setToolTip("The selected class is the one you click; keys 1–9 on the map select it too")
        layout = QVBoxLayout(box)
        self.class_table = QTableWidget(0, 5)
        self.class_table.setHorizontalHeaderLabels(["key", "colour", "name", "points", "weight"])
        self.class_table.horizontalHeaderItem(4).setToolTip(WEIGHT_TIP)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.class_table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for col in (0, 3, 4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(1, 48)
        self.class_table.verticalHeader().setDefaultSectionSize(24)
        self.class_table.itemChanged.connect(self._class_item_changed)
        self.class_table.itemSelectionChanged.connect(self._class_selected)
        layout.addWidget(self.class_table)
        row = QHBoxLayout()
        self.add_class_button = QToolButton()
        self.add_class_button.setText("+")
        self.add_class_button.setToolTip("Add a class")
        self.add_class_button.clicked.connect(lambda: self.classEdited.emit(ClassEdit("add")))
        self.remove_class_button = QToolButton()
        self.remove_class_button.setText("−")
        self.remove_class_button.setToolTip("Remove the selected class and its points")
        self.remove_class_button.clicked.connect(self._remove_clicked)
        self.tool_button = QToolButton()
        self.tool_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.tool_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last point added or removed (Ctrl+Z on the map)")
        self.undo_button.clicked.connect(self.undoRequested)
        for widget in (self.add_class_button, self.remove_class_button):
            row.addWidget(widget)
        row.addWidget(self.tool_button, 1)
        row.addWidget(self.undo_button)
        layout.addLayout(row)
        return box

    def _loop_box(self) -> QGroupBox:
        box = QGroupBox("Loop")
        layout = QVBoxLayout(box)
        options = QFormLayout()
        self.extent_combo = QComboBox()
        for key, text in EXTENTS:
            self.extent_combo.addItem(text, key)
        self.strategy_combo = QComboBox()
        for name in STRATEGIES:
            self.strategy_combo.addItem(name, name)
        self.strategy_combo.setToolTip("How Suggest picks where to click next")
        self.budget_spin = QSpinBox()
        self.budget_spin.setRange(1, 1000)
        self.budget_spin.setValue(20)
        self.budget_spin.setToolTip("How many points Suggest proposes (per raster)")
        for combo in (self.extent_combo, self.strategy_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
        suggest_row = QHBoxLayout()
        suggest_row.addWidget(self.strategy_combo, 1)
        suggest_row.addWidget(self.budget_spin)
        options.addRow("Predict on", self.extent_combo)
        options.addRow("Suggest by", suggest_row)
        layout.addLayout(options)
        buttons = QHBoxLayout()
        self.train_button = self._run_button("Train", "", ("train",))
        self.predict_button = self._run_button("Predict", "", ("predict",))
        self.suggest_button = self._run_button("Suggest", "", ("suggest",))
        self.train_button.setToolTip("Train on the points (continuing from the last model when the classes match)")
        self.predict_button.setToolTip("Predict classes and uncertainty with the last model")
        self.suggest_button.setToolTip("Suggest where to click next with the last model")
        for button in (self.train_button, self.predict_button, self.suggest_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.next_button = self._run_button("Next iteration", "next", ("train", "predict", "suggest"))
        self.next_button.setToolTip("Train (continuing from the last model), predict, then suggest")
        font = self.next_button.font()
        font.setBold(True)
        self.next_button.setFont(font)
        layout.addWidget(self.next_button)
        progress = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        progress.addWidget(self.progress_bar, 1)
        progress.addWidget(self.cancel_button)
        layout.addLayout(progress)
        self.stage_label = QLabel("")
        self.stage_label.setWordWrap(True)
        layout.addWidget(self.stage_label)
        return box

    def _iterations_box(self) -> QGroupBox:
        box = QGroupBox("Iterations")
        layout = QVBoxLayout(box)
        self.history_table = QTableWidget(0, 6)
        self.history_table.setHorizontalHeaderLabels(["#", "points", "loss", "time", "OA", "mIoU"])
        for col, tip in ((4, "overall accuracy against the reference, %"), (5, "mean IoU against the reference, %")):
            self.history_table.horizontalHeaderItem(col).setToolTip(tip)
        self.history_table.verticalHeader().setVisible(False)
        self.history_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.history_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.history_table.setMinimumHeight(90)
        self.history_table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(self.history_table)
        self.export_button = QPushButton("Export prediction…")
        self.export_button.setToolTip("Write the latest prediction as GeoTIFF or COG, optionally as polygons")
        self.export_button.clicked.connect(self.exportRequested)
        layout.addWidget(self.export_button)
        return box

    def _run_button(self, text: str, icon: str, commands: tuple[str, ...]) -> QPushButton:
        button = QPushButton(QIcon(icon_path(icon)), text) if icon else QPushButton(text)
        button.clicked.connect(lambda: self.runRequested.emit(RunRequest(commands, self.loop_options())))
        return button

    # ----- reading -----
    def loop_options(self) -> LoopOptions:
        return LoopOptions(self.strategy_combo.currentData(), self.budget_spin.value(), self.extent_combo.currentData())

    def checked_raster_ids(self) -> list[str]:
        items = (self.raster_list.item(i) for i in range(self.raster_list.count()))
        return [item.data(Qt.ItemDataRole.UserRole) for item in items if item.checkState() == Qt.CheckState.Checked]

    # ----- showing -----
    def set_tool_action(self, action) -> None:
        self.tool_button.setDefaultAction(action)

    def set_session(self, folder: str | None) -> None:
        self.folder_edit.setText(folder or "")
        for widget in (self.class_table, self.add_class_button, self.remove_class_button, self.tool_button,
                       self.undo_button, self.raster_list, self.reference_combo, self.history_table,
                       self.export_button):  # fmt: skip
            widget.setEnabled(folder is not None)
        self._session_open = folder is not None
        self._update_run_buttons()

    def set_rasters(self, layers: list[tuple[str, str]], checked: list[str]) -> None:
        """``layers``: (layer id, name) of the project's raster layers; ``checked``: the session's."""
        self._updating = True
        self.raster_list.clear()
        for layer_id, name in layers:
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, layer_id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer_id in checked else Qt.CheckState.Unchecked)
            self.raster_list.addItem(item)
        self._updating = False

    def set_reference(self, layer) -> None:
        self._updating = True
        self.reference_combo.setLayer(layer)
        self._updating = False

    def set_loop_options(self, loop: LoopOptions) -> None:
        self.strategy_combo.setCurrentIndex(max(self.strategy_combo.findData(loop.strategy), 0))
        self.extent_combo.setCurrentIndex(max(self.extent_combo.findData(loop.extent), 0))
        self.budget_spin.setValue(loop.budget)

    def set_classes(self, classes: Classes, active: int, counts: dict[str, int]) -> None:
        self._updating = True
        table = self.class_table
        table.setRowCount(len(classes))
        for row, spec in enumerate(classes):
            key = QTableWidgetItem(str(row + 1) if row < 9 else "")
            key.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            table.setItem(row, 0, key)
            button = QgsColorButton()
            button.setColor(QColor(spec.color))
            button.setShowMenu(False)
            button.setAllowOpacity(False)
            button.setFixedSize(44, 20)
            button.colorChanged.connect(lambda color, r=row: self._recolored(r, color))
            table.setCellWidget(row, 1, button)
            name = QTableWidgetItem(spec.name)
            name.setToolTip("Double-click to rename")
            name.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable)
            table.setItem(row, 2, name)
            count = QTableWidgetItem(str(counts.get(spec.name, 0)))
            count.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(row, 3, count)
            weight = QTableWidgetItem(spec.map_setting())
            weight.setToolTip(WEIGHT_TIP)
            weight.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(row, 4, weight)
        table.selectRow(active)
        rows = min(len(classes), 6)
        table.setFixedHeight(table.horizontalHeader().height() + rows * table.verticalHeader().defaultSectionSize() + 4)
        self._updating = False

    def set_history(self, records: list[IterationRecord], classes: Classes) -> None:
        table = self.history_table
        table.setRowCount(len(records))
        for row, record in enumerate(sorted(records, key=lambda r: -r.number)):
            metrics = record.metrics or {}
            cells = [str(record.number), str(sum(record.points_per_class.values())),
                     "" if record.loss is None else f"{record.loss:.3f}",
                     "" if record.seconds is None else f"{record.seconds:.0f} s",
                     percent(metrics.get("accuracy")), percent(metrics.get("miou"))]  # fmt: skip
            painted = [f"map: {shares_summary(record.map_shares, classes)}"] if record.map_shares else []
            tip = "\n".join([f"points: {points_summary(record.points_per_class, classes)}", *painted] +
                             [f"IoU {name}: {percent(v)} %" for name, v in (metrics.get("iou") or {}).items()
                              if v is not None] + [f"model: {record.model_dir}"])  # fmt: skip
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                table.setItem(row, col, item)

    def set_busy(self, busy: bool, text: str = "") -> None:
        self._busy = busy
        self.cancel_button.setEnabled(busy)
        if busy:
            self.progress_bar.setValue(0)
        self.stage_label.setText(text)
        self._update_run_buttons()

    def set_progress(self, value: float) -> None:
        self.progress_bar.setValue(int(value))

    def set_stage(self, text: str) -> None:
        self.stage_label.setText(text)

    def _update_run_buttons(self) -> None:
        enabled = getattr(self, "_session_open", False) and not getattr(self, "_busy", False)
        for button in (self.train_button, self.predict_button, self.suggest_button, self.next_button):
            button.setEnabled(enabled)

    # ----- user input -----
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Session folder (points, models, results)",
                                                  self.folder_edit.text())  # fmt: skip
        if folder:
            self.sessionFolderChosen.emit(folder)

    def _rasters_ticked(self, _item) -> None:
        if not self._updating:
            self.rastersChanged.emit(self.checked_raster_ids())

    def _reference_chosen(self, layer) -> None:
        if not self._updating:
            self.referenceChanged.emit(layer.id() if layer is not None else "")

    def _class_item_changed(self, item: QTableWidgetItem) -> None:
        action = {2: "rename", 4: "reweight"}.get(item.column())
        if not self._updating and action:
            self.classEdited.emit(ClassEdit(action, item.row(), item.text()))

    def _class_selected(self) -> None:
        rows = {index.row() for index in self.class_table.selectedIndexes()}
        if not self._updating and len(rows) == 1:
            self.classEdited.emit(ClassEdit("activate", rows.pop()))

    def _recolored(self, row: int, color: QColor) -> None:
        if not self._updating:
            self.classEdited.emit(ClassEdit("recolor", row, color.name()))

    def _remove_clicked(self) -> None:
        row = self.class_table.currentRow()
        if row >= 0:
            self.classEdited.emit(ClassEdit("remove", row))
